"""The playground for everyone: named controls, keyboard only, a phone-wide screen, API keys."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from service.engine.fake import DEFAULT_REPLY
from tests.browser import Console, screenshot
from tests.playground.conftest import API_KEY, Gateway

TABS = ["Chat", "Generate", "Summarize", "Classify"]
SUBMIT = {"Chat": "Send", "Generate": "Generate", "Summarize": "Summarize", "Classify": "Classify"}
# Roles of the things a user operates, in Chromium's accessibility tree.
CONTROL_ROLES = {"button", "checkbox", "combobox", "spinbutton", "tab", "textbox", "searchbox"}
FOCUSED = "document.activeElement.id || document.activeElement.textContent.trim()"
# The visible, enabled controls of the page outside the hidden panels.
VISIBLE_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter(e => !e.disabled && e.offsetParent !== null).map(e => e.id || e.textContent.trim())"""


def load(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.playground)
    expect(page.locator("#model-name")).not_to_have_text("…")


def unnamed_controls(page: Page) -> list[dict[str, Any]]:
    """Controls in Chromium's own accessibility tree with no accessible name."""
    session = page.context.new_cdp_session(page)
    nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    session.detach()
    return [
        node
        for node in nodes
        if not node.get("ignored")
        and node.get("role", {}).get("value") in CONTROL_ROLES
        and not str(node.get("name", {}).get("value", "")).strip()
    ]


def test_every_control_has_an_accessible_name(page: Page, gateway: Gateway) -> None:
    load(page, gateway)
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("tabpanel", name=tab)).to_be_visible()
        assert unnamed_controls(page) == [], tab


def test_everything_works_from_the_keyboard(page: Page, gateway: Gateway) -> None:
    load(page, gateway)
    page.get_by_role("tab", name="Chat").focus()
    for tab in TABS:
        if tab != "Chat":
            page.keyboard.press("ArrowRight")  # the tabs pattern: arrows move between tabs
        focused_tab = page.evaluate("document.activeElement.textContent")
        assert focused_tab == tab
        expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
        # Tab walks through every visible control of the panel, in order, and back out.
        reached: list[str] = []
        for _ in range(30):
            page.keyboard.press("Tab")
            reached.append(page.evaluate(FOCUSED))
        controls = page.evaluate(VISIBLE_CONTROLS)
        # The other tabs are reached with the arrows (one tab stop for the tab list).
        others = {f"tab-{other.lower()}" for other in TABS if other != tab}
        missing = set(controls) - set(reached) - others
        assert missing == set(), f"{tab}: not reachable with Tab: {missing}"
        page.get_by_role("tab", name=tab).focus()

    # A request from the keyboard alone: Enter on the focused submit button.
    page.keyboard.press("Home")
    expect(page.get_by_role("tab", name="Chat")).to_be_focused()
    panel = page.get_by_role("tabpanel", name="Chat")
    panel.get_by_role("button", name="Send").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".turn.assistant .text")).to_have_text(DEFAULT_REPLY)


def test_nothing_scrolls_sideways_on_a_phone(
    page: Page, gateway: Gateway, console: Console
) -> None:
    console.allow(r"Failed to load resource: the server responded with a status of 4\d\d")
    page.set_viewport_size({"width": 375, "height": 800})
    load(page, gateway)
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        panel = page.get_by_role("tabpanel", name=tab)
        panel.get_by_role("button", name=SUBMIT[tab], exact=True).click()
        expect(panel.locator(".meta")).to_contain_text("request id")  # an answer is shown
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, tab
        screenshot(page, f"narrow-{tab.lower()}")
    # A long error message with its request id wraps too.
    panel = page.get_by_role("tabpanel", name="Classify")
    panel.get_by_label("Label set").select_option("")
    panel.get_by_role("textbox", name="Custom labels").fill(",".join(["x" * 40] * 70))
    panel.get_by_role("button", name="Classify", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("request id")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_with_api_keys_the_page_asks_for_one(
    page: Page, keyed_gateway: Gateway, console: Console
) -> None:
    console.allow(r"Failed to load resource: the server responded with a status of 401")
    load(page, keyed_gateway)
    key_field = page.get_by_label("API key")
    expect(key_field).to_be_visible()
    chat = page.get_by_role("tabpanel", name="Chat")
    chat.get_by_role("button", name="Send").click()
    expect(chat.get_by_role("alert")).to_contain_text("Error 401 (invalid_api_key)")
    expect(chat.locator(".turn")).to_have_count(0)  # a failed turn leaves the conversation
    page.get_by_role("tab", name="Classify").click()
    panel = page.get_by_role("tabpanel", name="Classify")
    panel.get_by_role("button", name="Classify", exact=True).click()
    alert = panel.get_by_role("alert")
    expect(alert).to_contain_text("Error 401 (invalid_api_key): You didn't provide an API key")
    expect(alert).to_contain_text(re.compile(r"request id: [0-9a-f]{32}"))

    key_field.fill(API_KEY)
    panel.get_by_role("button", name="Classify", exact=True).click()
    expect(panel.locator("#classify-bars li")).to_have_count(3)
    expect(alert).to_be_hidden()
    # The live view needs no key: /metrics is open to scrapers.
    expect(page.locator("#live-queue")).to_have_text("0")
    screenshot(page, "api-key")


def test_without_api_keys_there_is_no_key_field(page: Page, gateway: Gateway) -> None:
    load(page, gateway)
    expect(page.get_by_label("API key")).to_be_hidden()

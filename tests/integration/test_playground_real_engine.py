"""The playground in a real headless Chromium against the real engine (the shared session one).

The fake-engine suite (tests/playground) covers each control; this checks that what the real
model sends back renders: a streamed chat reply, a generation, a summary, and label bars.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import chromium, screenshot, watch_console
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

REQUEST_ID = re.compile(r"request id: [0-9a-f]{32}")
# The real model takes seconds per answer on 2 CPU cores.
ANSWER_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    console = watch_console(opened)
    try:
        yield opened
    finally:
        context.close()
    assert console.unexpected() == []


def test_every_panel_renders_the_real_models_answer(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.base_url}/playground")
    expect(page.locator("#model-name")).to_have_text(live_server.model)

    chat = page.get_by_role("tabpanel", name="Chat")
    chat.get_by_label("Max tokens").fill("24")
    chat.get_by_role("button", name="Send").click()
    expect(chat.locator("#chat-meta")).to_contain_text(REQUEST_ID, timeout=ANSWER_TIMEOUT_MS)
    expect(chat.locator(".turn.assistant .text")).to_have_text(re.compile(r"\w"))
    expect(chat.locator("#chat-meta")).to_contain_text(re.compile(r"first token \d+ ms"))
    screenshot(page, "real-engine-chat")

    page.get_by_role("tab", name="Generate").click()
    generate = page.get_by_role("tabpanel", name="Generate")
    generate.get_by_label("max_new_tokens").fill("12")
    generate.get_by_role("button", name="Generate", exact=True).click()
    expect(generate.locator("#generate-meta")).to_contain_text(
        re.compile(r"\d+ prompt \+ 12 completion tokens"), timeout=ANSWER_TIMEOUT_MS
    )
    expect(generate.locator(".generation")).to_have_text(re.compile(r"\w"))

    page.get_by_role("tab", name="Summarize").click()
    summarize = page.get_by_role("tabpanel", name="Summarize")
    summarize.get_by_label("max_length").fill("40")
    summarize.get_by_role("button", name="Summarize", exact=True).click()
    expect(summarize.locator("#summarize-meta")).to_contain_text(
        REQUEST_ID, timeout=ANSWER_TIMEOUT_MS
    )
    expect(summarize.locator("#summarize-output")).to_have_text(re.compile(r"\w"))
    expect(summarize.locator("#summarize-chunks")).to_have_text("1")
    expect(summarize.locator("#summarize-depth")).to_have_text("0")

    page.get_by_role("tab", name="Classify").click()
    classify = page.get_by_role("tabpanel", name="Classify")
    classify.get_by_role("button", name="Classify", exact=True).click()
    expect(classify.locator("#classify-meta")).to_contain_text(
        REQUEST_ID, timeout=ANSWER_TIMEOUT_MS
    )
    bars = classify.locator("#classify-bars li")
    expect(bars.locator(".bar-label")).to_have_text(["positive", "negative", "neutral"])
    shares = [float(v.rstrip("%")) for v in bars.locator(".bar-value").all_inner_texts()]
    assert abs(sum(shares) - 100) < 0.5
    # The label chosen is the one drawn as best, with the largest share.
    best = classify.locator(".fill.best").locator("xpath=../..").locator(".bar-label")
    expect(best).to_have_count(1)
    label = best.inner_text()
    assert shares[["positive", "negative", "neutral"].index(label)] == max(shares)
    expect(classify.locator("#classify-label")).to_have_text(f"Label: {label}")
    screenshot(page, "real-engine-classify")

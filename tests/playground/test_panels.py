"""Each panel of the playground sends its request and renders the answer, in a real Chromium."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from service.engine.fake import DEFAULT_REPLY
from tests.browser import Console, screenshot
from tests.playground.conftest import Gateway

REQUEST_ID = re.compile(r"request id: [0-9a-f]{32}")


def open_tab(page: Page, gateway: Gateway, name: str) -> Locator:
    """The panel `name`, open (controls are looked up in it: each panel has a Stream box)."""
    page.goto(gateway.playground)
    expect(page.locator("#model-name")).not_to_have_text("…")  # config.json has been read
    page.get_by_role("tab", name=name).click()
    return page.get_by_role("tabpanel", name=name)


def test_chat_streams_the_reply_as_it_comes(page: Page, gateway: Gateway) -> None:
    panel = open_tab(page, gateway, "Chat")
    reply = page.locator(".turn.assistant .text").last
    gateway.streams.hold_after = 3  # the engine stops after three tokens until released
    try:
        panel.get_by_role("button", name="Send").click()
        expect(reply).to_have_text("The capital of")
        expect(panel.get_by_role("button", name="Send")).to_be_disabled()  # still streaming
    finally:
        gateway.streams.release()
    expect(reply).to_have_text(DEFAULT_REPLY)
    meta = page.locator("#chat-meta")
    expect(meta).to_contain_text(REQUEST_ID)
    expect(meta).to_contain_text(re.compile(r"first token \d+ ms"))
    expect(meta).to_contain_text(re.compile(r"\d+ prompt \+ 6 completion tokens"))
    # The live view reads /metrics: the stream's time to first token shows up there.
    expect(page.locator("#live-ttft")).to_have_text(re.compile(r"^\d+ ms \(mean\)$"))
    screenshot(page, "chat")

    # The next turn carries the conversation so far as `history`.
    panel.get_by_label("Message").fill("And of Italy?")
    panel.get_by_label("Stream").uncheck()
    panel.get_by_role("button", name="Send").click()
    expect(page.locator(".turn.assistant .text")).to_have_count(2)
    expect(page.locator(".turn.assistant .text").last).to_have_text(DEFAULT_REPLY)
    prompt_ids = gateway.engine.requests[-1].prompt_token_ids
    prompt = gateway.engine.tokenizer.decode(prompt_ids)
    assert "Where is my order?" in prompt and "And of Italy?" in prompt


def test_generate_sends_the_hugging_face_parameters(page: Page, gateway: Gateway) -> None:
    panel = open_tab(page, gateway, "Generate")
    panel.get_by_label("max_new_tokens").fill("4")
    panel.get_by_label("repetition_penalty").fill("1.2")
    panel.get_by_label("seed").fill("7")
    panel.get_by_label("Stream").uncheck()
    panel.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator(".generation")).to_have_text("The capital of France")
    options = gateway.engine.requests[-1].options
    assert (options.max_tokens, options.repetition_penalty, options.seed) == (4, 1.2, 7)
    expect(page.locator("#generate-meta")).to_contain_text(REQUEST_ID)

    panel.get_by_label("Stream").check()
    panel.get_by_label("max_new_tokens").fill("48")
    panel.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator(".generation")).to_have_text(DEFAULT_REPLY)
    expect(page.locator("#generate-meta")).to_contain_text("first token")
    screenshot(page, "generate")


def test_summarize_shows_the_map_reduce_steps(page: Page, gateway: Gateway) -> None:
    panel = open_tab(page, gateway, "Summarize")
    panel.get_by_role("button", name="Summarize", exact=True).click()
    expect(page.locator("#summarize-output")).to_have_text(re.compile(r"\S"))
    expect(page.locator("#summarize-chunks")).to_have_text("1")
    expect(page.locator("#summarize-depth")).to_have_text("0")

    # Longer than the fake engine's 256-token context: split, summarized, reduced.
    long_text = " ".join(f"Sentence {i} of a long report about the harbour." for i in range(120))
    panel.get_by_label("Text").fill(long_text)
    panel.get_by_label("Style").select_option("bullets")
    panel.get_by_role("button", name="Summarize", exact=True).click()
    expect(page.locator("#summarize-depth")).to_have_text(re.compile(r"^[1-9]\d*$"))
    chunks = int(page.locator("#summarize-chunks").inner_text())
    assert chunks > 1
    expect(page.locator("#summarize-meta")).to_contain_text(REQUEST_ID)
    screenshot(page, "summarize")


def test_classify_draws_a_bar_per_label(page: Page, gateway: Gateway) -> None:
    panel = open_tab(page, gateway, "Classify")
    panel.get_by_role("button", name="Classify", exact=True).click()
    bars = page.locator("#classify-bars li")
    expect(bars).to_have_count(3)
    expect(bars.locator(".bar-label")).to_have_text(["positive", "negative", "neutral"])
    expect(page.locator("#classify-label")).to_have_text(
        re.compile(r"^Label: (positive|negative|neutral)$")
    )
    shares = [float(v.rstrip("%")) for v in bars.locator(".bar-value").all_inner_texts()]
    assert abs(sum(shares) - 100) < 0.5
    widths = bars.locator(".fill").evaluate_all("els => els.map(e => e.style.width)")
    assert widths == [f"{share:.1f}%" for share in shares]

    panel.get_by_label("Label set").select_option("")  # custom labels
    panel.get_by_role("textbox", name="Custom labels").fill("billing, shipping")
    panel.get_by_role("button", name="Classify", exact=True).click()
    expect(bars.locator(".bar-label")).to_have_text(["billing", "shipping"])
    expect(page.locator("#classify-meta")).to_contain_text(REQUEST_ID)
    screenshot(page, "classify")


def test_an_api_error_shows_the_servers_message_and_request_id(
    page: Page, gateway: Gateway, console: Console
) -> None:
    console.allow(r"Failed to load resource: the server responded with a status of 4\d\d")
    panel = open_tab(page, gateway, "Classify")
    panel.get_by_label("Label set").select_option("")
    panel.get_by_role("textbox", name="Custom labels").fill(
        ", ".join(f"label{i}" for i in range(65))
    )
    with page.expect_response("**/v1/classify") as answer:
        panel.get_by_role("button", name="Classify", exact=True).click()
    response = answer.value
    error = response.json()["error"]
    assert response.status >= 400
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text(error["message"])
    expect(alert).to_contain_text(f"request id: {response.headers['x-request-id']}")
    expect(alert).to_contain_text(f"Error {response.status}")
    expect(page.locator("#classify-bars li")).to_have_count(0)
    screenshot(page, "classify-error")
    assert len(console.errors) == 1  # the failed request's own line, nothing else

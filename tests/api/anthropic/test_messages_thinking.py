"""Thinking on /v1/messages, on a fake engine that thinks aloud: with a reasoning parser the
thought is a thinking block with a signature (streamed: thinking_delta, then signature_delta),
shown empty with `display: omitted` and not at all with `thinking: disabled`; without a parser
the reply is text."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.fake import FakeEngine
from tests.api.anthropic.messages import (
    MESSAGES,
    comparable,
    events_of,
    messages_body,
    sdk_client,
)
from tests.api.helpers import make_app, serve
from tests.api.openai.test_chat_reasoning import THOUGHT, ThinkTags
from tests.conftest import FAKE_MODEL


def thinking_app(engine: FakeEngine) -> Any:
    return make_app(engine, reasoning_parser="deepseek_r1")


async def test_the_thought_is_a_thinking_block_before_the_text() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(thinking_app(engine)) as client:
        body = messages_body(thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=2048)
        message = (await client.post(MESSAGES, json=body)).json()
    thinking, text = message["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "The capital is Paris."
    assert thinking["signature"]
    assert text == {"type": "text", "text": "Paris."}


async def test_streamed_thinking_then_its_signature_then_the_text() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(thinking_app(engine)) as client:
        response = await client.post(MESSAGES, json=messages_body(stream=True))
    events = events_of(response.text)
    blocks = [data for name, data in events if name == "content_block_start"]
    assert [b["content_block"]["type"] for b in blocks] == ["thinking", "text"]
    assert blocks[0]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    first = [data["delta"] for name, data in events if data.get("index") == 0 and "delta" in data]
    assert [d["type"] for d in first][-1] == "signature_delta"
    assert {d["type"] for d in first[:-1]} == {"thinking_delta"}
    assert "".join(d["thinking"] for d in first[:-1]).strip() == "The capital is Paris."
    names = [name for name, _ in events]
    assert names.index("content_block_stop") < names.index("content_block_start", 2)


async def test_the_sdk_accumulates_thinking_into_the_same_message() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    request: dict[str, Any] = {
        "model": FAKE_MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with sdk_client(thinking_app(engine)) as client:
        whole = await client.messages.create(**request)
        async with client.messages.stream(**request) as stream:
            streamed = await stream.get_final_message()
    # A stream carries the thought's spacing as it came; the whole answer's parser strips it.
    assert [b["type"] for b in comparable(streamed)] == ["thinking", "text"]
    assert [b.type for b in whole.content] == ["thinking", "text"]
    assert streamed.content[0].signature  # type: ignore[union-attr]
    assert comparable(streamed)[1]["text"].strip() == comparable(whole)[1]["text"]


@pytest.mark.parametrize(
    ("thinking", "shown"),
    [
        pytest.param({"type": "adaptive", "display": "omitted"}, "", id="omitted"),
        pytest.param({"type": "disabled"}, None, id="disabled"),
    ],
)
async def test_how_thinking_shows(thinking: dict[str, Any], shown: str | None) -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(thinking_app(engine)) as client:
        whole = (await client.post(MESSAGES, json=messages_body(thinking=thinking))).json()
        body = messages_body(thinking=thinking, stream=True)
        events = events_of((await client.post(MESSAGES, json=body)).text)
    types = [block["type"] for block in whole["content"]]
    deltas = {data["delta"]["type"] for name, data in events if name == "content_block_delta"}
    assert "thinking_delta" not in deltas
    if shown is None:
        assert types == ["text"] and "signature_delta" not in deltas
    else:
        assert types == ["thinking", "text"] and whole["content"][0]["thinking"] == shown
        assert "signature_delta" in deltas
    assert whole["content"][-1]["text"] == "Paris."


async def test_without_a_reasoning_parser_the_thought_stays_in_the_text() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(make_app(engine)) as client:
        body = messages_body(thinking={"type": "enabled", "budget_tokens": 2000}, max_tokens=4000)
        message = (await client.post(MESSAGES, json=body)).json()
    assert message["content"] == [{"type": "text", "text": THOUGHT}]

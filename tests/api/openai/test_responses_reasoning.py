"""Reasoning on /v1/responses, on a fake engine that thinks aloud: with a reasoning parser the
thought is a `reasoning` output item, streamed as `response.reasoning_text` events before the
answer's message; without one it stays in the text."""

from __future__ import annotations

from typing import Any

from service.engine.fake import FakeEngine
from tests.api.helpers import make_app, serve, sse_named
from tests.api.openai.test_chat_reasoning import THOUGHT, ThinkTags
from tests.conftest import FAKE_MODEL

RESPONSES = "/v1/responses"
BODY: dict[str, Any] = {"model": FAKE_MODEL, "input": "Capital of France?"}


async def test_reasoning_is_an_item_whole_and_a_sequence_of_events_streamed() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(make_app(engine, reasoning_parser="deepseek_r1")) as client:
        whole = (await client.post(RESPONSES, json=BODY)).json()
        events = sse_named((await client.post(RESPONSES, json=BODY | {"stream": True})).text)
    reasoning, answer = whole["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "The capital is Paris."}]
    assert answer["content"][0]["text"] == "Paris."
    kinds = [event["type"] for event in events]
    thinking = kinds[2 : kinds.index("response.reasoning_text.done")]
    assert thinking[:2] == ["response.output_item.added", "response.content_part.added"]
    assert set(thinking[2:]) == {"response.reasoning_text.delta"}
    done = kinds.index("response.reasoning_text.done")
    assert kinds[done : done + 4] == [
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # the answer's message
    ]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    final = events[-1]["response"]
    assert deltas.strip() == final["output"][0]["content"][0]["text"].strip()
    assert final["output"][0]["status"] == "completed"
    assert [item["type"] for item in final["output"]] == ["reasoning", "message"]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))


async def test_without_a_parser_there_is_no_reasoning_item() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(make_app(engine)) as client:
        whole = (await client.post(RESPONSES, json=BODY)).json()
    (message,) = whole["output"]
    assert message["content"][0]["text"] == THOUGHT

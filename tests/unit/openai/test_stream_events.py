"""Streamed chat and completion events: a step that only adds text is written through a text
slot (`services/core/chunk_json.py`), every other event by its model. Either way the event is
the bytes the model path writes: for chat, the JSON of the chunks `chat.chunks` gives (the
model path, which the Responses API reads); for completions, the dump of the event's own model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from service.caller import Caller
from service.config import Settings
from service.engine.base import FinishReason, GenerationChunk, ParsedDelta, SequenceDelta
from service.engine.fake import FakeCall, FakeEngine
from service.schemas.chat import ChatCompletionRequest
from service.schemas.completions import CompletionRequest, CompletionResponse
from service.services.openai import chat, completions
from service.services.openai.chat_pieces import event_json
from tests.api.helpers import chat_body, completion_body
from tests.conftest import FAKE_MODEL

# Word tokens with text JSON must escape: quotes, a backslash, non-ASCII, a non-BMP character.
REPLY = 'Le "café" à 東京\\ est ouvert 😀 ce soir.'
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
NAMED = {"type": "function", "function": {"name": "get_weather"}}
_CALL_ID = re.compile(r'"id":"call_[0-9a-f]+"')


class ThinkTags:
    """A `<think>...</think>` reasoning parser (the ReasoningParser protocol)."""

    def __init__(self) -> None:
        self.text = ""

    def extract(self, text: str) -> tuple[str | None, str | None]:
        head, _, tail = text.partition("</think>")
        return head.replace("<think>", "").strip() or None, tail.strip() or None

    def extract_streaming(self, delta_text: str, delta_ids: Sequence[int]) -> ParsedDelta | None:
        inside = "</think>" not in self.text
        self.text += delta_text
        if delta_text.strip() in ("<think>", "</think>"):
            return None
        return ParsedDelta(reasoning=delta_text) if inside else ParsedDelta(content=delta_text)


Step = tuple[str, FinishReason | None, str | None]  # text, finish reason, stop reason


def stepping(steps: list[Step]) -> FakeEngine:
    """An engine that streams `steps` (one token each) for every request."""

    async def handler(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        for k, (text, finish, stop) in enumerate(steps):
            delta = SequenceDelta(0, text, [k + 1], None, finish, stop)
            yield GenerationChunk([delta], 3, finish is not None)

    return FakeEngine(handler=handler)


def masked(events: list[str]) -> list[str]:
    return [_CALL_ID.sub('"id":"call_"', event) for event in events]


async def chat_events(engine: FakeEngine, settings: Settings, **fields: Any) -> list[list[str]]:
    """The same prepared stream twice: as `chat.stream` sends it, and as `chat.chunks`' JSON."""
    request = ChatCompletionRequest.model_validate(chat_body(stream=True, **fields))
    prepared = chat.prepare(request, engine, settings, Caller())
    sent = [event async for event in chat.stream(prepared, engine)]
    models = [event_json(chunk) async for chunk in chat.chunks(prepared, engine)]
    return [masked(sent), masked(models)]


SETTINGS = Settings(model=FAKE_MODEL, default_max_tokens=24)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="plain"),
        pytest.param({"stream_options": {"include_usage": True}}, id="usage"),
        pytest.param({"n": 2, "temperature": 1.0}, id="two-choices"),
        pytest.param({"logprobs": True, "top_logprobs": 2}, id="logprobs"),
        pytest.param({"stop": ["soir"]}, id="stop-string"),
        pytest.param({"max_tokens": 3}, id="cut"),
        pytest.param({"tools": TOOLS, "tool_choice": "required"}, id="required"),
        pytest.param({"tools": TOOLS, "tool_choice": NAMED}, id="named"),
        pytest.param({"tools": TOOLS, "tool_choice": "auto"}, id="auto-without-parser"),
    ],
)
async def test_chat_events_are_the_chunks_json(fields: dict[str, Any]) -> None:
    sent, models = await chat_events(FakeEngine(reply=REPLY), SETTINGS, **fields)
    assert sent == models
    assert len(sent) > 3


async def test_chat_events_with_reasoning_are_the_chunks_json() -> None:
    engine = FakeEngine(reply=f"<think> {REPLY} </think> {REPLY}", reasoning=ThinkTags)
    settings = Settings(model=FAKE_MODEL, default_max_tokens=64, reasoning_parser="deepseek_r1")
    sent, models = await chat_events(engine, settings)
    assert sent == models
    assert any('"reasoning":' in event for event in sent)


STEPS: list[Step] = [
    ("", None, None),  # a token without text: nothing to send
    (" a\nb", None, None),
    ("\x00\x1f\u2028", None, None),
    (" 😀", None, None),
    (" end", "stop", "end"),
]


async def test_chat_events_of_any_step_are_the_chunks_json() -> None:
    sent, models = await chat_events(stepping(STEPS), SETTINGS)
    assert sent == models
    assert len(sent) == 1 + 4  # the opening, then every step with text or a finish


async def test_a_text_the_model_refuses_is_refused_in_the_stream_too() -> None:
    engine = stepping([("a\ud800", None, None), ("", "stop", None)])
    request = ChatCompletionRequest.model_validate(chat_body(stream=True))
    for stream in (chat.stream, _chat_chunk_json):
        prepared = chat.prepare(request, engine, SETTINGS, Caller())
        with pytest.raises(ValueError):
            _ = [event async for event in stream(prepared, engine)]


async def _chat_chunk_json(prepared: chat.PreparedChat, engine: FakeEngine) -> AsyncIterator[str]:
    async for chunk in chat.chunks(prepared, engine):
        yield event_json(chunk)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="plain"),
        pytest.param({"stream_options": {"include_usage": True}}, id="usage"),
        pytest.param({"echo": True}, id="echo"),
        pytest.param({"logprobs": 2}, id="logprobs"),
        pytest.param({"echo": True, "logprobs": 1}, id="echo-logprobs"),
        pytest.param({"n": 2, "temperature": 1.0}, id="two-choices"),
        pytest.param({"prompt": ["Say hi", "Say bye"]}, id="two-prompts"),
        pytest.param({"stop": ["soir"]}, id="stop-string"),
    ],
)
async def test_completion_events_are_their_models_dump(fields: dict[str, Any]) -> None:
    engine = FakeEngine(reply=REPLY)
    request = CompletionRequest.model_validate(completion_body(stream=True, **fields))
    prepared = completions.prepare(request, engine, SETTINGS, Caller())
    sent = [event async for event in completions.stream(prepared, engine)]
    texts: dict[int, str] = {}
    for event in sent:
        model = CompletionResponse.model_validate_json(event)
        if model.usage is None:
            assert model.model_dump_json(exclude={"usage"}) == event
        else:
            assert model.model_dump_json() == event
        for choice in model.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    whole = await completions.complete(prepared, engine)
    assert texts == {choice.index: choice.text for choice in whole.choices}

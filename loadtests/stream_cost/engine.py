"""Fake engines whose streams cost (almost) nothing: every step is one prepared delta."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from service.engine.base import FinishReason, GenerationChunk, SequenceDelta
from service.engine.fake import FakeCall, FakeEngine

# One token's text per step, cycled: plain words, and text JSON must escape (quotes, a
# newline, a backslash, non-ASCII), so that a faster encoder is held to the same bytes.
WORDS = (" Paris", " is", ' "the"', " café", " 東京", "\n", " a\\b", " 😀", " capital", ".")

TOOL_NAME = "get_weather"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def text_pieces(tokens: int) -> list[str]:
    return [WORDS[k % len(WORDS)] for k in range(tokens)]


def required_pieces(tokens: int) -> list[str]:
    """`tool_choice: required` output (the JSON list the mode constrains to), six characters a
    step: about `tokens` steps."""
    city = "Paris " * max(tokens - 8, 1)
    text = json.dumps([{"name": TOOL_NAME, "parameters": {"city": city}}])
    return [text[i : i + 6] for i in range(0, len(text), 6)]


def stepping_engine(pieces: list[str], *, yield_each_step: bool) -> FakeEngine:
    """An engine that streams `pieces`, one a step, for every request; with `yield_each_step`
    it lets the event loop run between steps, as a real engine's output queue does."""

    async def handler(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        prompt = len(call.request.prompt_token_ids)
        last = len(pieces) - 1
        for k, piece in enumerate(pieces):
            finish: FinishReason | None = "stop" if k == last else None
            yield GenerationChunk([SequenceDelta(0, piece, [5], None, finish)], prompt, k == last)
            if yield_each_step:
                await asyncio.sleep(0)

    return FakeEngine(handler=handler, max_model_len=1_000_000)

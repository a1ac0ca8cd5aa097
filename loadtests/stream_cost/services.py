"""The `service` level: a service's stream of SSE payloads, alone (no HTTP, no event loop
switches between steps), on a fake engine whose steps are prepared deltas."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from loadtests.stream_cost.engine import TOOLS, required_pieces, stepping_engine, text_pieces
from service.caller import Caller
from service.config import Settings
from service.engine.fake import FakeEngine
from service.schemas.chat import ChatCompletionRequest
from service.schemas.completions import CompletionRequest
from service.schemas.tasks import GenerateRequest
from service.services.openai import chat, completions
from service.services.tasks import generate

MODEL = "fake-model"
Stream = Callable[[], AsyncIterator[str]]


@dataclass(frozen=True, slots=True)
class ServiceCase:
    """One stream to measure: `start(engine, settings)` gives a fresh stream of payloads."""

    name: str
    pieces: Callable[[int], list[str]]
    start: Callable[[FakeEngine, Settings], Stream]


def _chat(body: dict[str, Any]) -> Callable[[FakeEngine, Settings], Stream]:
    def start(engine: FakeEngine, settings: Settings) -> Stream:
        request = ChatCompletionRequest.model_validate(body)
        return lambda: chat.stream(chat.prepare(request, engine, settings, Caller()), engine)

    return start


def _completion(engine: FakeEngine, settings: Settings) -> Stream:
    request = CompletionRequest.model_validate({"model": MODEL, "prompt": "hi", "stream": True})
    return lambda: completions.stream(
        completions.prepare(request, engine, settings, Caller()), engine
    )


def _generate(engine: FakeEngine, settings: Settings) -> Stream:
    request = GenerateRequest.model_validate({"prompt": "hi", "stream": True})
    return lambda: generate.stream(generate.prepare(request, engine, settings, Caller()), engine)


_MESSAGES = [{"role": "user", "content": "hi"}]
CASES = {
    case.name: case
    for case in (
        ServiceCase(
            "chat", text_pieces, _chat({"model": MODEL, "messages": _MESSAGES, "stream": True})
        ),
        ServiceCase(
            "chat-usage",
            text_pieces,
            _chat(
                {
                    "model": MODEL,
                    "messages": _MESSAGES,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
            ),
        ),
        ServiceCase(
            "chat-required",
            required_pieces,
            _chat(
                {
                    "model": MODEL,
                    "messages": _MESSAGES,
                    "stream": True,
                    "tools": TOOLS,
                    "tool_choice": "required",
                }
            ),
        ),
        ServiceCase("completions", text_pieces, _completion),
        ServiceCase("generate", text_pieces, _generate),
    )
}


@dataclass(slots=True)
class Round:
    cpu_seconds: float
    events: int
    digest: str  # of the payloads, ids and times masked: the same bytes on every tree


async def measure(
    case: ServiceCase, *, tokens: int, streams: int, mask: Callable[[str], str]
) -> Round:
    engine = stepping_engine(case.pieces(tokens), yield_each_step=False)
    settings = Settings(model=MODEL, default_max_tokens=tokens * 4)
    start = case.start(engine, settings)
    digest = hashlib.sha256()
    events = 0
    cpu = 0.0
    for _ in range(streams):
        began = time.process_time()
        payloads = [payload async for payload in start()]
        cpu += time.process_time() - began
        events += len(payloads)
        for payload in payloads:
            digest.update(mask(payload).encode())
    return Round(cpu, events, digest.hexdigest()[:16])

"""Streamed /v1/messages on the fake engine: Anthropic's event sequence, the SDK's accumulator
rebuilding the non-streamed answer, `ping` events while the engine holds the request (on a real
server: httpx's ASGI transport buffers bodies), errors mid-stream as an `error` event, and a
client that leaves aborting the engine request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Message

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.errors import OverloadedError
from tests.api.anthropic.messages import (
    MESSAGES,
    comparable,
    events_of,
    messages_body,
    sdk_client,
)
from tests.api.helpers import fails_mid_stream, http_scope, make_app, serve
from tests.conftest import FAKE_MODEL, HANG_GUARD
from tests.servers import serve_in_thread

TEXT_STREAM = [
    "message_start",
    "content_block_start",
    *["content_block_delta"] * 6,
    "content_block_stop",
    "message_delta",
    "message_stop",
]


async def test_the_event_sequence(client: httpx.AsyncClient, fake_engine: FakeEngine) -> None:
    response = await client.post(MESSAGES, json=messages_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"] == response.headers["x-request-id"]
    events = events_of(response.text)
    assert [name for name, _ in events] == TEXT_STREAM
    start = events[0][1]["message"]
    prompt = len(fake_engine.requests[-1].prompt_token_ids)
    assert start["id"].startswith("msg_") and start["content"] == []
    assert start["usage"] == {"input_tokens": prompt, "output_tokens": 0}
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == "The capital of France is Paris."
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": prompt, "output_tokens": 6},
    }


async def test_a_stop_sequence_ends_the_stream_with_it(client: httpx.AsyncClient) -> None:
    body = messages_body(stream=True, stop_sequences=["France"])
    events = events_of((await client.post(MESSAGES, json=body)).text)
    assert events[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "France"}


async def test_max_tokens_zero_streams_an_empty_message(client: httpx.AsyncClient) -> None:
    events = events_of(
        (await client.post(MESSAGES, json=messages_body(max_tokens=0, stream=True))).text
    )
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert events[1][1]["delta"]["stop_reason"] == "max_tokens"
    assert events[1][1]["usage"]["output_tokens"] == 0


async def test_an_empty_output_is_one_empty_text_block_streamed_or_not() -> None:
    engine = FakeEngine(reply="STOP")
    async with serve(make_app(engine)) as client:
        body = messages_body(stop_sequences=["STOP"])
        whole = (await client.post(MESSAGES, json=body)).json()
        events = events_of((await client.post(MESSAGES, json=body | {"stream": True})).text)
    assert whole["content"] == [{"type": "text", "text": ""}]
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_the_sdk_accumulates_the_stream_into_the_same_message(
    fake_engine: FakeEngine,
) -> None:
    request: dict[str, Any] = {
        "model": FAKE_MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with sdk_client(make_app(fake_engine)) as client:
        whole = await client.messages.create(**request)
        async with client.messages.stream(**request) as stream:
            texts = [text async for text in stream.text_stream]
            streamed = await stream.get_final_message()
    assert "".join(texts) == "The capital of France is Paris."
    assert comparable(streamed) == comparable(whole)
    assert (streamed.stop_reason, streamed.usage) == (whole.stop_reason, whole.usage)


async def test_an_engine_failure_mid_stream_is_an_error_event() -> None:
    engine = fails_mid_stream(RuntimeError("secret detail"))
    async with serve(make_app(engine)) as client:
        response = await client.post(MESSAGES, json=messages_body(stream=True))
    assert response.status_code == 200
    events = events_of(response.text)
    name, data = events[-1]
    assert name == "error"
    assert data["error"]["type"] == "api_error" and data["request_id"]
    assert "message_stop" not in [n for n, _ in events]
    assert "secret detail" not in response.text and "Traceback" not in response.text


async def test_a_gateway_error_mid_stream_keeps_its_anthropic_type() -> None:
    engine = fails_mid_stream(OverloadedError("The engine is overloaded."))
    async with serve(make_app(engine)) as client:
        events = events_of((await client.post(MESSAGES, json=messages_body(stream=True))).text)
    assert events[-1][1]["error"] == {
        "type": "overloaded_error",
        "message": "The engine is overloaded.",
    }


async def test_the_sdk_raises_the_error_event(fake_engine: FakeEngine) -> None:
    import anthropic

    engine = fails_mid_stream(RuntimeError("boom"))
    async with sdk_client(make_app(engine)) as client:
        with pytest.raises(anthropic.APIStatusError) as raised:
            async with client.messages.stream(
                model=FAKE_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                await stream.get_final_message()
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_a_passed_deadline_mid_stream_is_a_timeout_error_event() -> None:
    engine = FakeEngine()
    async with serve(make_app(engine)) as client:
        engine.delay = 5.0
        response = await client.post(
            MESSAGES, json=messages_body(stream=True), headers={"x-request-timeout": "0.3"}
        )
    events = events_of(response.text)
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "timeout_error"


async def test_a_client_disconnect_aborts_the_engine_request(
    app: FastAPI, fake_engine: FakeEngine
) -> None:
    request = json.dumps(messages_body(stream=True)).encode()
    inbox: list[dict[str, Any]] = [{"type": "http.request", "body": request, "more_body": False}]
    gone = asyncio.Event()
    sent: list[Message] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and b"message_start" in message.get("body", b""):
            gone.set()  # the client leaves right after message_start

    scope = http_scope(MESSAGES, method="POST", headers={"content-type": "application/json"})
    async with LifespanManager(
        app, startup_timeout=HANG_GUARD, shutdown_timeout=HANG_GUARD
    ) as manager:
        await app.state.gateway.engine_state.wait_started()
        fake_engine.gate = asyncio.Event()  # never set: the engine produces no token
        await manager.app(scope, receive, send)
    engine_request_id = fake_engine.requests[-1].request_id
    assert engine_request_id in fake_engine.aborted
    assert sent[0]["status"] == 200
    assert not any(b"message_stop" in m.get("body", b"") for m in sent)


@pytest.fixture
def gated_server() -> Iterator[tuple[str, FakeEngine]]:
    engine = FakeEngine()
    app = create_app(
        Settings(model=FAKE_MODEL, sse_keepalive_seconds=0.05), engine_factory=lambda: engine
    )
    with serve_in_thread(app, startup_timeout=HANG_GUARD) as url:
        engine.gate = asyncio.Event()  # after the warm-up, which must not wait on it
        yield url, engine


def test_ping_events_while_the_engine_holds_the_request(
    gated_server: tuple[str, FakeEngine],
) -> None:
    url, engine = gated_server
    lines: list[str] = []
    with httpx.stream(
        "POST", f"{url}{MESSAGES}", json=messages_body(stream=True), timeout=HANG_GUARD
    ) as response:
        for line in response.iter_lines():
            lines.append(line)
            if line == "event: ping":
                engine.open_gate()  # a ping came while the engine held the request
    events = events_of("\n".join(lines))
    names = [name for name, _ in events]
    assert names[0] == "message_start" and "ping" in names
    assert names.index("ping") < names.index("content_block_start")
    assert events[names.index("ping")][1] == {"type": "ping"}
    assert names[-1] == "message_stop"

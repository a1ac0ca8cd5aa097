"""The gateway writes each event's frame itself: the bytes sse-starlette would write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Message

from service.config import Settings
from service.http.sse import data_frame, event_stream


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param('{"choices":[{"delta":{"content":"café \\"東京\\" 😀"}}]}', id="json"),
        pytest.param("[DONE]", id="done"),
        pytest.param("", id="empty"),
        pytest.param("two\nlines", id="newline"),
        pytest.param("a\r\nb\rc", id="carriage-returns"),
    ],
)
def test_a_frame_is_sse_starlettes(payload: str) -> None:
    assert data_frame(payload) == ServerSentEvent(payload).encode()


def test_the_send_hook_the_response_overrides_is_the_one_sse_starlette_calls() -> None:
    # sse-starlette sends every event through `_send_with_timeout`; the gateway's response
    # overrides it to send without a cancel scope. A release that renamed it would leave the
    # override unused (slower, not wrong): this says so.
    assert "_send_with_timeout" in EventSourceResponse._stream_response.__code__.co_names


async def test_a_stream_sends_the_frames_and_ends() -> None:
    async def payloads() -> AsyncIterator[str]:
        yield '{"n":1}'
        yield "with\nnewline"

    settings = Settings(sse_keepalive_seconds=60)
    response = event_stream(payloads(), settings)
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": []}
    await response(scope, receive, send)
    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert bodies == [
        b'data: {"n":1}\r\n\r\n',
        b"data: with\r\ndata: newline\r\n\r\n",
        b"data: [DONE]\r\n\r\n",
        b"",
    ]
    assert sent[-1]["more_body"] is False

"""What a stream's text events look like on the wire, whatever the text: one `data:` line each,
JSON that keeps non-ASCII as it is; and a text JSON cannot carry ends the stream in-band."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from service.engine.base import FinishReason, GenerationChunk, SequenceDelta
from service.engine.fake import FakeCall, FakeEngine
from tests.api.helpers import CHAT, ENDPOINTS, body_for, make_app, serve, sse_data

PIECES = [" a\nb", ' "q"\\', " café 東京 😀", "\x00\u2028", " end"]


def stepping(pieces: list[str]) -> FakeEngine:
    async def handler(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        last = len(pieces) - 1
        for k, text in enumerate(pieces):
            finish: FinishReason | None = "stop" if k == last else None
            yield GenerationChunk([SequenceDelta(0, text, [k + 1], None, finish)], 3, k == last)

    return FakeEngine(handler=handler)


def texts(payloads: list[str]) -> list[str]:
    out = []
    for payload in payloads:
        for choice in json.loads(payload)["choices"]:
            text = choice.get("text", choice.get("delta", {}).get("content"))
            if text:
                out.append(text)
    return out


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_every_text_is_one_data_line_of_json_as_written(path: str) -> None:
    async with serve(make_app(stepping(PIECES))) as client:
        body = (await client.post(path, json=body_for(path, stream=True))).content
    events = body.split(b"\r\n\r\n")
    assert events[-1] == b""
    assert all(event.startswith(b"data: ") and b"\r\n" not in event for event in events[:-1])
    # Split as SSE does, on line ends only (str.splitlines would split at U+2028 too).
    payloads = [event.removeprefix(b"data: ").decode() for event in events[:-1]]
    assert payloads[-1] == "[DONE]"
    assert texts(payloads[:-1]) == PIECES
    assert "café 東京 😀" in body.decode()  # not \u-escaped


async def test_a_text_json_cannot_carry_ends_the_stream_with_an_error_event() -> None:
    async with serve(make_app(stepping([" fine", "\ud800", " never"]))) as client:
        response = await client.post(CHAT, json=body_for(CHAT, stream=True))
    assert response.status_code == 200
    payloads = sse_data(response.text)
    assert payloads[-1] == "[DONE]"
    error = json.loads(payloads[-2])["error"]
    assert error["type"] == "server_error"
    assert texts(payloads[:-2]) == [" fine"]

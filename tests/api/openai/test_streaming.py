"""Streaming (SSE) for chat and completions: framing, deltas, usage, in-band errors, aborts."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Message

from service.app import create_app
from service.config import Settings
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from service.errors import EngineFailureError, EngineUnavailableError, GatewayError
from tests.api.helpers import (
    CHAT,
    COMPLETIONS,
    DONE,
    ENDPOINTS,
    body_for,
    chat_body,
    completion_body,
    fails_mid_stream,
    http_scope,
    serve,
    sse_data,
)
from tests.api.helpers import sse_json as events
from tests.conftest import HANG_GUARD

REPLY_TOKENS = len(DEFAULT_REPLY.split())


async def stream(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    response = await client.post(path, json={**body, "stream": True})
    assert response.status_code == 200, response.text
    return response


def chat_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        c["delta"].get("content") or ""
        for chunk in chunks
        for c in chunk["choices"]
        if c["index"] == index
    )


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_stream_headers(client: httpx.AsyncClient, path: str) -> None:
    body = body_for(path)
    response = await stream(client, path, body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["cache-control"] == "no-cache"


async def test_chat_stream_matches_the_non_streamed_reply(client: httpx.AsyncClient) -> None:
    whole = (await client.post(CHAT, json=chat_body(stop=["Paris"]))).json()
    chunks = events((await stream(client, CHAT, chat_body(stop=["Paris"]))).text)
    first, rest = chunks[0], chunks[1:]
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert first["choices"][0]["finish_reason"] is None
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert all(c["delta"].get("role") is None for chunk in rest for c in chunk["choices"])
    assert chat_text(chunks) == whole["choices"][0]["message"]["content"]
    reasons = [c["finish_reason"] for chunk in rest for c in chunk["choices"]]
    assert reasons[-1] == "stop"
    assert all(reason is None for reason in reasons[:-1])
    assert "usage" not in chunks[-1] or chunks[-1]["usage"] is None


async def test_chat_stream_include_usage_adds_a_final_usage_chunk(
    client: httpx.AsyncClient,
) -> None:
    whole = (await client.post(CHAT, json=chat_body(max_tokens=4))).json()
    body = chat_body(max_tokens=4, stream_options={"include_usage": True})
    chunks = events((await stream(client, CHAT, body)).text)
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"] == whole["usage"]
    assert last["usage"]["completion_tokens"] == 4
    assert all(chunk.get("usage") is None for chunk in chunks[:-1])


async def test_chat_stream_with_n_choices(client: httpx.AsyncClient) -> None:
    chunks = events((await stream(client, CHAT, chat_body(n=2, temperature=1.0))).text)
    assert sorted(c["index"] for c in chunks[0]["choices"]) == [0, 1]
    assert all(c["delta"]["role"] == "assistant" for c in chunks[0]["choices"])
    for index in (0, 1):
        assert chat_text(chunks, index) == DEFAULT_REPLY
        reasons = [
            c["finish_reason"] for ch in chunks for c in ch["choices"] if c["index"] == index
        ]
        assert reasons[-1] == "stop"


async def test_chat_stream_logprobs_cover_every_token(client: httpx.AsyncClient) -> None:
    body = chat_body(logprobs=True, top_logprobs=2, stream_options={"include_usage": True})
    chunks = events((await stream(client, CHAT, body)).text)
    entries = [
        entry
        for chunk in chunks[1:-1]
        for c in chunk["choices"]
        for entry in c["logprobs"]["content"]
    ]
    assert len(entries) == chunks[-1]["usage"]["completion_tokens"]
    assert "".join(entry["token"] for entry in entries) == DEFAULT_REPLY
    assert all(len(entry["top_logprobs"]) == 2 for entry in entries)


async def test_completion_stream_matches_the_non_streamed_reply(
    client: httpx.AsyncClient,
) -> None:
    fields = {"prompt": ["a b", "c"], "n": 2, "temperature": 0.5, "max_tokens": 5, "echo": True}
    whole = (await client.post(COMPLETIONS, json=completion_body(**fields))).json()
    body = completion_body(**fields, stream_options={"include_usage": True})
    chunks = events((await stream(client, COMPLETIONS, body)).text)
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    texts: dict[int, str] = defaultdict(str)
    reasons: dict[int, list[str | None]] = defaultdict(list)
    for chunk in chunks[:-1]:
        (choice,) = chunk["choices"]
        texts[choice["index"]] += choice["text"]
        reasons[choice["index"]].append(choice["finish_reason"])
    assert texts == {c["index"]: c["text"] for c in whole["choices"]}
    assert texts[0].startswith("a b") and texts[2].startswith("c")
    for index in range(4):
        assert reasons[index][-1] == "length"
        assert all(reason is None for reason in reasons[index][:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole["usage"]


async def test_completion_stream_logprob_offsets_run_across_chunks(
    client: httpx.AsyncClient,
) -> None:
    body = completion_body(prompt="Name a capital", echo=True, logprobs=1)
    chunks = events((await stream(client, COMPLETIONS, body)).text)
    text = "".join(chunk["choices"][0]["text"] for chunk in chunks)
    tokens, offsets = [], []
    for chunk in chunks:
        logprobs = chunk["choices"][0]["logprobs"]
        tokens += logprobs["tokens"]
        offsets += logprobs["text_offset"]
    assert "".join(tokens) == text
    for token, offset in zip(tokens, offsets, strict=True):
        assert text[offset : offset + len(token)] == token


ERRORS = [
    pytest.param(RuntimeError("boom at /srv/secret.py"), "engine_error", id="unexpected"),
    pytest.param(EngineFailureError("The engine failed."), "engine_error", id="engine-failure"),
    pytest.param(
        EngineUnavailableError("The engine has stopped."),
        "engine_unavailable",
        id="engine-unavailable",
    ),
]


@pytest.mark.parametrize(("error", "code"), ERRORS)
@pytest.mark.parametrize("path", ENDPOINTS)
async def test_an_error_mid_stream_is_an_event_then_done(
    settings: Settings, error: BaseException, code: str, path: str
) -> None:
    engine = fails_mid_stream(error)
    app = create_app(settings, engine_factory=lambda: engine)
    async with serve(app) as client:
        response = await stream(client, path, body_for(path))
    payloads = events(response.text)
    assert len(payloads) >= 3  # some content got out before the failure
    assert all("error" not in payload for payload in payloads[:-1])
    error_event = payloads[-1]
    assert set(error_event["error"]) == {"message", "type", "param", "code"}
    assert error_event["error"]["code"] == code
    if isinstance(error, GatewayError):
        assert error_event["error"]["message"] == error.message
    assert "boom" not in response.text
    assert "secret" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_an_engine_failure_at_the_start_of_a_stream_is_an_event(
    client: httpx.AsyncClient, fake_engine: FakeEngine, path: str
) -> None:
    fake_engine.fail_with = RuntimeError("boom")
    body = body_for(path)
    response = await stream(client, path, body)
    data = sse_data(response.text)
    assert data[-1] == DONE
    assert json.loads(data[-2])["error"]["type"] == "server_error"
    assert "boom" not in response.text
    assert "Traceback" not in response.text


async def test_a_client_disconnect_aborts_the_engine_request(
    app: FastAPI, fake_engine: FakeEngine
) -> None:
    request = json.dumps(chat_body(stream=True)).encode()
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
        if message["type"] == "http.response.body" and b"assistant" in message.get("body", b""):
            gone.set()  # the client leaves right after the role chunk

    scope = http_scope(CHAT, method="POST", headers={"content-type": "application/json"})
    async with LifespanManager(
        app, startup_timeout=HANG_GUARD, shutdown_timeout=HANG_GUARD
    ) as manager:
        await app.state.gateway.engine_state.wait_started()
        fake_engine.gate = asyncio.Event()  # never set: the engine produces no token
        await manager.app(scope, receive, send)
    engine_request_id = fake_engine.requests[-1].request_id
    assert engine_request_id in fake_engine.aborted
    assert sent[0]["status"] == 200
    assert not any(b"[DONE]" in m.get("body", b"") for m in sent)

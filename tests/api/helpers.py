"""Small helpers for the API tests: OpenAI error bodies, SSE bodies, apps built per test, raw
ASGI scopes, access-log records, API keys, and an engine that fails mid-stream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Scope

from service.app import create_app
from service.config import Settings
from service.engine.base import EngineRequest, GenerationChunk
from service.engine.fake import FakeCall, FakeEngine
from service.telemetry.logs import JsonFormatter, TextFormatter
from tests.conftest import FAKE_MODEL, HANG_GUARD

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
DONE = "[DONE]"
# For tests that hold for both generation endpoints.
ENDPOINTS = [pytest.param(CHAT, id="chat"), pytest.param(COMPLETIONS, id="completions")]


def chat_body(content: str = "hi", **fields: Any) -> dict[str, Any]:
    return {"model": FAKE_MODEL, "messages": [{"role": "user", "content": content}], **fields}


def completion_body(prompt: Any = "Say hi", **fields: Any) -> dict[str, Any]:
    return {"model": FAKE_MODEL, "prompt": prompt, **fields}


def body_for(path: str, **fields: Any) -> dict[str, Any]:
    """A minimal valid request for either endpoint."""
    return chat_body(**fields) if path == CHAT else completion_body(**fields)


def assert_openai_error(
    response: httpx.Response,
    status: int,
    *,
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """Assert the status and OpenAI's error shape (and `param`/`code` when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


async def assert_rejected_before_the_engine(
    client: httpx.AsyncClient,
    engine: FakeEngine,
    path: str,
    body: dict[str, Any],
    status: int,
    *,
    param: str | None = None,
    code: str | None = None,
) -> None:
    """POST `body`: an OpenAI `invalid_request_error`, answered without calling the engine."""
    before = len(engine.requests)
    response = await client.post(path, json=body)
    error = assert_openai_error(response, status, param=param, code=code)
    assert error["type"] == "invalid_request_error"
    assert len(engine.requests) == before  # rejected before reaching the engine


def sse_data(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order (comments and blank lines dropped)."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def sse_json(text: str) -> list[dict[str, Any]]:
    """The JSON payloads of an OpenAI stream; asserts it ends with exactly one [DONE]."""
    data = sse_data(text)
    assert data, text
    assert data[-1] == DONE, data
    assert data.count(DONE) == 1, data
    return [json.loads(item) for item in data[:-1]]


def sse_named(text: str) -> list[dict[str, Any]]:
    """The JSON payloads of a stream of named events (the Responses API's): each `data:` line
    follows an `event:` line naming its type, and no [DONE] ends it."""
    events: list[dict[str, Any]] = []
    name: str | None = None
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            payload = json.loads(line[len("data: ") :])
            kind = payload.get("type", "error" if "error" in payload else None)
            assert name == kind, (name, payload)
            events.append(payload)
            name = None
    assert events, text
    return events


@asynccontextmanager
async def serve(
    app: FastAPI, *, wait_started: bool = True, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client on it (the conftest `client`, configurable)."""
    # asgi-lifespan's default 5 s start/stop timeouts are timing thresholds: on a loaded 2-core
    # machine the app's start or stop has taken longer. HANG_GUARD only catches a hang.
    async with LifespanManager(
        app, startup_timeout=HANG_GUARD, shutdown_timeout=HANG_GUARD
    ) as manager:
        if wait_started:
            await app.state.gateway.engine_state.wait_started()
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


def make_app(fake_engine: FakeEngine, **settings: Any) -> FastAPI:
    """An app on `fake_engine` with these settings over the fast-suite defaults."""
    base: dict[str, Any] = {"model": FAKE_MODEL, "default_max_tokens": 16}
    return create_app(Settings(**{**base, **settings}), engine_factory=lambda: fake_engine)


def client_requests(engine: FakeEngine) -> list[EngineRequest]:
    """The engine requests made for clients (not the start-up's: its warm-up request and the
    classify presets' priors)."""
    return [r for r in engine.requests if not r.request_id.startswith("warmup")]


def engine_calls(engine: FakeEngine) -> int:
    """Generations the engine ran for clients (its start-up aside)."""
    return len(client_requests(engine))


def http_scope(
    path: str, *, method: str = "GET", headers: Mapping[str, str] | None = None
) -> Scope:
    """The ASGI scope of a plain HTTP/1.1 request, for driving an app by hand."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("test", 1),
        "server": ("test", 80),
    }


def fails_mid_stream(error: BaseException) -> FakeEngine:
    """A fake engine whose streams send two deltas, then raise `error` as an engine bug would."""

    async def handler(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        produced = 0
        async for chunk in call.reply():
            if call.stream and produced == 2:
                raise error
            produced += 1
            yield chunk

    return FakeEngine(handler=handler)


# --- Logs


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "service.access"]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as both formatters print it: what would reach a log pipeline."""
    json_lines = [JsonFormatter().format(r) for r in caplog.records]
    text_lines = [TextFormatter().format(r) for r in caplog.records]
    return "\n".join(json_lines + text_lines)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a log record (an access line's status, outcome, key_id...)."""
    fields: dict[str, Any] = getattr(record, "fields", {})
    return fields


# --- API keys

KEY = "sk-test-4f1c2a9b7e"
OTHER_KEY = "sk-other-88d0c3"
AUTH = {"Authorization": f"Bearer {KEY}"}


def key_id(key: str) -> str:
    """The id a key is logged under: a prefix of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a condition the server reaches on its own (bounded, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + HANG_GUARD
    while not condition():
        if loop.time() > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)

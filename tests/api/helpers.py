"""Small helpers for the API tests: OpenAI error bodies, SSE bodies, apps built per test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.conftest import FAKE_MODEL

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


@asynccontextmanager
async def serve(
    app: FastAPI, *, wait_started: bool = True, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client on it (the conftest `client`, configurable)."""
    async with LifespanManager(app) as manager:
        if wait_started:
            await app.state.engine_state.wait_started()
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http

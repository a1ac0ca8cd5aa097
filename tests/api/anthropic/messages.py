"""Helpers for the Messages API's tests: request bodies, Anthropic's error shape, the event
stream, and the official `anthropic` SDK on an app in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx
import httpx2
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from tests.conftest import FAKE_MODEL, HANG_GUARD

MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}
TOOLS: list[Any] = [
    {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER},
    {
        "name": "get_time",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
]


def messages_body(content: Any = "hi", **fields: Any) -> dict[str, Any]:
    return {
        "model": FAKE_MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
        **fields,
    }


def assert_anthropic_error(
    response: httpx.Response, status: int, error_type: str, *, mentions: str | None = None
) -> str:
    """Anthropic's error shape, its request id in the body and the header; the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}, body
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}, body
    assert body["error"]["type"] == error_type, body
    message: str = body["error"]["message"]
    assert message.strip()
    assert response.headers["request-id"] == body["request_id"] == response.headers["x-request-id"]
    if mentions is not None:
        assert mentions in message, message
    return message


def events_of(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of an Anthropic stream; every data's `type` is its event's name."""
    events: list[tuple[str, dict[str, Any]]] = []
    name: str | None = None
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            assert name is not None, text
            data = json.loads(line[len("data: ") :])
            assert data["type"] == name, (name, data)
            events.append((name, data))
            name = None
    return events


@asynccontextmanager
async def sdk_client(
    app: FastAPI, *, api_key: str = "unused", **options: Any
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official SDK on `app` in process (its lifespan run, its engine started)."""
    async with LifespanManager(
        app, startup_timeout=HANG_GUARD, shutdown_timeout=HANG_GUARD
    ) as manager:
        await app.state.gateway.engine_state.wait_started()
        transport = httpx2.ASGITransport(app=manager.app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
            yield anthropic.AsyncAnthropic(
                base_url="http://test",
                api_key=api_key,
                http_client=http,
                max_retries=0,
                **options,
            )


def comparable(message: anthropic.types.Message) -> list[dict[str, Any]]:
    """A message's content blocks as dicts, without what differs between two answers of the same
    output (tool_use ids, thinking signatures) or between the SDK's block classes."""
    differs = {"id", "signature", "parsed_output", "citations"}
    return [
        {key: value for key, value in block.model_dump().items() if key not in differs}
        for block in message.content
    ]

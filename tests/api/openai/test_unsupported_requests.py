"""Requests for what this server does not serve or implement: an unknown model (404), the
legacy functions, suffix, best_of, image parts and unknown fields (400, `unsupported_parameter` or
`unknown_parameter`), all as OpenAI error bodies before the engine is called."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.engine.fake import FakeEngine
from tests.api.helpers import (
    CHAT,
    COMPLETIONS,
    assert_rejected_before_the_engine,
    chat_body,
    completion_body,
)
from tests.conftest import FAKE_MODEL


def user(content: Any) -> dict[str, Any]:
    return {"model": FAKE_MODEL, "messages": [{"role": "user", "content": content}]}


UNSUPPORTED = [
    pytest.param(
        CHAT,
        {**chat_body(), "model": "gpt-4o"},
        404,
        "model",
        "model_not_found",
        id="unknown-model-chat",
    ),
    pytest.param(
        COMPLETIONS,
        {**completion_body(), "model": "x"},
        404,
        "model",
        "model_not_found",
        id="unknown-model-completions",
    ),
    pytest.param(
        CHAT,
        {**chat_body(stream=True), "model": "x"},
        404,
        "model",
        "model_not_found",
        id="unknown-model-before-a-stream-starts",
    ),
    pytest.param(
        CHAT,
        chat_body(functions=[{"name": "f"}]),
        400,
        "functions",
        "unsupported_parameter",
        id="functions",
    ),
    pytest.param(
        COMPLETIONS,
        completion_body(suffix="end"),
        400,
        "suffix",
        "unsupported_parameter",
        id="suffix",
    ),
    pytest.param(
        COMPLETIONS,
        completion_body(best_of=3),
        400,
        "best_of",
        "unsupported_parameter",
        id="best_of-not-n",
    ),
    pytest.param(CHAT, chat_body(foo=1), 400, "foo", "unknown_parameter", id="unknown-field"),
    pytest.param(
        CHAT,
        chat_body(stream=True, stream_options={"x": 1}),
        400,
        "stream_options.x",
        "unknown_parameter",
        id="unknown-nested-field",
    ),
    pytest.param(
        CHAT,
        user([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]),
        400,
        "messages.0.content.0.type",
        "unsupported_parameter",
        id="image-part",
    ),
    pytest.param(
        CHAT,
        {
            "model": FAKE_MODEL,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            ],
        },
        400,
        None,
        "unsupported_parameter",
        id="assistant-function_call",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "param", "code"), UNSUPPORTED)
async def test_unsupported_requests_are_openai_errors(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    path: str,
    body: dict[str, Any],
    status: int,
    param: str | None,
    code: str | None,
) -> None:
    await assert_rejected_before_the_engine(
        client, fake_engine, path, body, status, param=param, code=code
    )

"""Request validation: malformed messages, prompts and bodies, sampling values out of range or in a
bad combination, and prompts longer than the context: 400s in OpenAI's shape (never 422) that
name the offending `param`, before the engine is called."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from tests.api.helpers import (
    CHAT,
    COMPLETIONS,
    assert_openai_error,
    assert_rejected_before_the_engine,
    chat_body,
    completion_body,
    serve,
)
from tests.conftest import FAKE_MODEL

LONG = "w " * 300  # 300 tokens for the fake tokenizer; the fake context is 256

INVALID = [
    # --- malformed messages and prompts
    pytest.param(
        CHAT,
        {"model": FAKE_MODEL, "messages": [{"role": "wizard", "content": "x"}]},
        400,
        None,
        None,
        id="unknown-role",
    ),
    pytest.param(
        CHAT,
        {"model": FAKE_MODEL, "messages": [{"role": "user"}]},
        400,
        "messages.0.content",
        None,
        id="user-without-content",
    ),
    pytest.param(
        CHAT, {"model": FAKE_MODEL, "messages": []}, 400, "messages", None, id="empty-messages"
    ),
    pytest.param(CHAT, {"model": FAKE_MODEL}, 400, "messages", None, id="no-messages"),
    pytest.param(
        CHAT, {"messages": [{"role": "user", "content": "x"}]}, 400, "model", None, id="no-model"
    ),
    pytest.param(
        COMPLETIONS, completion_body(prompt=[]), 400, "prompt", None, id="empty-prompt-list"
    ),
    pytest.param(
        COMPLETIONS, completion_body(prompt=""), 400, "prompt", None, id="empty-prompt-string"
    ),
    pytest.param(
        COMPLETIONS, completion_body(prompt=[[]]), 400, "prompt", None, id="empty-token-list"
    ),
    pytest.param(
        COMPLETIONS, completion_body(prompt=5), 400, "prompt", None, id="prompt-wrong-type"
    ),
    # --- sampling values out of range or in a bad combination
    pytest.param(CHAT, chat_body(temperature=3), 400, "temperature", None, id="temperature-3"),
    pytest.param(
        CHAT, chat_body(temperature="hot"), 400, "temperature", None, id="temperature-string"
    ),
    pytest.param(CHAT, chat_body(top_p=0), 400, "top_p", None, id="top_p-0"),
    pytest.param(CHAT, chat_body(n=0), 400, "n", None, id="n-0"),
    pytest.param(
        CHAT, chat_body(presence_penalty=5), 400, "presence_penalty", None, id="presence_penalty-5"
    ),
    pytest.param(
        CHAT,
        chat_body(frequency_penalty=-3),
        400,
        "frequency_penalty",
        None,
        id="frequency_penalty--3",
    ),
    pytest.param(
        COMPLETIONS, completion_body(logprobs=30), 400, "logprobs", None, id="logprobs-30"
    ),
    pytest.param(
        CHAT,
        chat_body(top_logprobs=2),
        400,
        "top_logprobs",
        None,
        id="top_logprobs-without-logprobs",
    ),
    pytest.param(
        CHAT,
        chat_body(logprobs=True, top_logprobs=21),
        400,
        "top_logprobs",
        None,
        id="top_logprobs-21",
    ),
    pytest.param(CHAT, chat_body(max_tokens=0), 400, "max_tokens", None, id="max_tokens-0"),
    pytest.param(
        CHAT,
        chat_body(max_completion_tokens=0),
        400,
        "max_completion_tokens",
        None,
        id="max_completion_tokens-0",
    ),
    pytest.param(
        CHAT,
        chat_body(max_tokens=5, min_tokens=6),
        400,
        "min_tokens",
        None,
        id="min_tokens-over-max_tokens",
    ),
    pytest.param(CHAT, chat_body(n=2, temperature=0), 400, "n", None, id="n-2-greedy"),
    pytest.param(
        CHAT,
        chat_body(stream_options={"include_usage": True}),
        400,
        "stream_options",
        None,
        id="stream_options-without-stream",
    ),
    pytest.param(CHAT, chat_body(stop=[""]), 400, "stop.0", None, id="empty-stop-string"),
    pytest.param(CHAT, chat_body(stop=["s"] * 17), 400, "stop", None, id="too-many-stops"),
    pytest.param(CHAT, chat_body(seed=2**64), 400, "seed", None, id="seed-over-int64"),
    pytest.param(
        CHAT,
        chat_body(logit_bias={"abc": 1}),
        400,
        "logit_bias",
        None,
        id="logit_bias-key-not-a-token-id",
    ),
    pytest.param(
        CHAT,
        chat_body(logit_bias={"-1": 1}),
        400,
        "logit_bias",
        None,
        id="logit_bias-negative-token-id",
    ),
    pytest.param(
        CHAT,
        chat_body(response_format={"type": "json_schema"}),
        400,
        "response_format.json_schema",
        None,
        id="json_schema-without-schema",
    ),
    pytest.param(
        CHAT,
        chat_body(response_format={"type": "xml"}),
        400,
        "response_format.type",
        None,
        id="response_format-unknown-type",
    ),
    pytest.param(
        CHAT,
        chat_body(structured_outputs={"regex": "a", "choice": ["b"]}),
        400,
        "structured_outputs",
        None,
        id="structured_outputs-two-constraints",
    ),
    # --- longer than the context (fake max_model_len = 256)
    pytest.param(
        COMPLETIONS,
        completion_body(prompt="a b c d", max_tokens=253),
        400,
        "max_tokens",
        "context_length_exceeded",
        id="prompt-plus-max_tokens",
    ),
    pytest.param(
        CHAT,
        chat_body(max_tokens=254),
        400,
        "max_tokens",
        "context_length_exceeded",
        id="chat-prompt-plus-max_tokens",
    ),
    pytest.param(
        CHAT,
        chat_body(max_completion_tokens=254),
        400,
        "max_completion_tokens",
        "context_length_exceeded",
        id="chat-prompt-plus-max_completion_tokens",
    ),
    pytest.param(
        COMPLETIONS,
        completion_body(prompt=LONG),
        400,
        "prompt",
        "context_length_exceeded",
        id="prompt-alone-too-long",
    ),
    pytest.param(
        COMPLETIONS,
        completion_body(prompt=["short", LONG]),
        400,
        "prompt",
        "context_length_exceeded",
        id="one-of-many-prompts-too-long",
    ),
    pytest.param(
        CHAT,
        chat_body(LONG),
        400,
        "messages",
        "context_length_exceeded",
        id="messages-alone-too-long",
    ),
    pytest.param(
        CHAT,
        chat_body(LONG, stream=True),
        400,
        "messages",
        "context_length_exceeded",
        id="too-long-before-a-stream-starts",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "param", "code"), INVALID)
async def test_invalid_requests_are_openai_errors(
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


async def test_context_length_message_names_the_limit(client: httpx.AsyncClient) -> None:
    response = await client.post(COMPLETIONS, json=completion_body(max_tokens=300))
    error = assert_openai_error(response, 400, code="context_length_exceeded")
    assert "256" in error["message"]


async def test_logprobs_above_the_server_limit_name_the_field_sent(
    fake_engine: FakeEngine,
) -> None:
    settings = Settings(model=FAKE_MODEL, max_logprobs=2)
    app = create_app(settings, engine_factory=lambda: fake_engine)
    async with serve(app) as client:
        completion = await client.post(COMPLETIONS, json=completion_body(logprobs=3))
        chat = await client.post(CHAT, json=chat_body(logprobs=True, top_logprobs=3))
    assert "2" in assert_openai_error(completion, 400, param="logprobs")["message"]
    assert_openai_error(chat, 400, param="top_logprobs")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"model": "fake-model", "messages": [', id="truncated"),
        pytest.param(b"model=fake-model", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'["a list"]', id="json-but-not-an-object"),
    ],
)
async def test_malformed_bodies_are_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        CHAT, content=content, headers={"content-type": "application/json"}
    )
    assert_openai_error(response, 400)

"""Errors of /v1/messages in Anthropic's shape, whoever answers them: the request's validation
(every bad input a 400 that names the field, never a 500), the key check, the body limit and
the rate limits of the ASGI edge, admission, deadlines, the engine; each with its Anthropic
type and status, a `request-id` header, and the SDK's matching exception."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import anthropic
import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from tests.api.anthropic.messages import (
    COUNT,
    MESSAGES,
    assert_anthropic_error,
    messages_body,
    sdk_client,
)
from tests.api.helpers import (
    CHAT,
    KEY,
    assert_openai_error,
    chat_body,
    engine_calls,
    make_app,
    serve,
    until,
)
from tests.conftest import FAKE_MODEL


def with_messages(*messages: Any) -> dict[str, Any]:
    return messages_body() | {"messages": list(messages)}


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}

# (body, the field the message must name)
BAD: list[Any] = [
    pytest.param(messages_body(foo=1), "foo", id="unknown-field"),
    pytest.param(messages_body(temperature=None, top_n=3), "top_n", id="unknown-sampling"),
    pytest.param(
        with_messages({"role": "user", "content": "hi", "name": "x"}),
        "messages.0.name",
        id="unknown-message-field",
    ),
    pytest.param(
        messages_body([{"type": "text", "text": "hi", "bogus": 1}]),
        "messages.0.content.0.bogus",
        id="unknown-block-field",
    ),
    pytest.param(messages_body(metadata={"user_id": "u", "x": 1}), "metadata.x", id="metadata"),
    pytest.param(
        {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        "max_tokens",
        id="no-max-tokens",
    ),
    pytest.param(messages_body(max_tokens=-1), "max_tokens", id="negative-max-tokens"),
    pytest.param(messages_body(max_tokens="many"), "max_tokens", id="max-tokens-type"),
    pytest.param(messages_body(max_tokens=2**40), "max_tokens", id="huge-max-tokens"),
    pytest.param(messages_body() | {"messages": []}, "messages", id="no-messages"),
    pytest.param(messages_body(model=""), "model", id="empty-model"),
    pytest.param(messages_body([IMAGE]), "messages.0.content.0", id="image"),
    pytest.param(messages_body([DOCUMENT]), "messages.0.content.0", id="document"),
    pytest.param(messages_body(system=[IMAGE]), "system.0", id="system-image"),
    pytest.param(
        with_messages(
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": [IMAGE]}],
            },
        ),
        "messages.2.content.0.content.0",
        id="tool-result-image",
    ),
    pytest.param(
        messages_body([{"type": "search_result", "source": "s", "title": "t", "content": []}]),
        "messages.0.content.0.type",
        id="search-result",
    ),
    pytest.param(
        messages_body([{"type": "mystery"}]), "messages.0.content.0.type", id="block-type"
    ),
    pytest.param(messages_body([{"text": "no type"}]), "messages.0.content.0", id="block-no-type"),
    pytest.param(
        with_messages(
            {"role": "system", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]}
        ),
        "messages.0.content.0.type",
        id="system-message-thinking",
    ),
    pytest.param(with_messages({"role": "tool", "content": "x"}), "messages.0.role", id="role"),
    pytest.param(messages_body(temperature=1.5), "temperature", id="temperature"),
    pytest.param(messages_body(top_p=0), "top_p", id="top-p"),
    pytest.param(messages_body(top_k=-1), "top_k", id="top-k"),
    pytest.param(messages_body(stop_sequences=[""]), "stop_sequences.0", id="empty-stop"),
    pytest.param(messages_body(stop_sequences=["s"] * 17), "stop_sequences", id="many-stops"),
    pytest.param(
        messages_body(thinking={"type": "enabled", "budget_tokens": 100}),
        "thinking.budget_tokens",
        id="small-budget",
    ),
    pytest.param(
        messages_body(thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=2048),
        "thinking.budget_tokens",
        id="budget-over-max-tokens",
    ),
    pytest.param(messages_body(thinking={"type": "deep"}), "thinking", id="thinking-type"),
    pytest.param(
        messages_body(output_config={"format": {"type": "regex", "schema": {}}}),
        "output_config.format.type",
        id="format-type",
    ),
    pytest.param(
        messages_body(output_config={"effort": "extreme"}), "output_config.effort", id="effort"
    ),
    pytest.param(
        messages_body(container={"skills": [{"skill_id": "pptx", "type": "anthropic"}]}),
        "container.skills",
        id="skills",
    ),
    pytest.param(messages_body(service_tier="priority"), "service_tier", id="service-tier"),
    pytest.param(messages_body(speed="warp"), "speed", id="speed"),
    pytest.param(
        messages_body(cache_control={"type": "persistent"}),
        "cache_control.type",
        id="cache-control",
    ),
    pytest.param(messages_body(stream=[True]), "stream", id="stream-type"),
]


@pytest.mark.parametrize(("body", "param"), BAD)
async def test_bad_input_is_a_400_naming_the_field(
    client: httpx.AsyncClient, fake_engine: FakeEngine, body: dict[str, Any], param: str
) -> None:
    response = await client.post(MESSAGES, json=body)
    message = assert_anthropic_error(response, 400, "invalid_request_error")
    assert param in message, message
    assert engine_calls(fake_engine) == 0


async def test_images_and_documents_are_refused_as_text_only(client: httpx.AsyncClient) -> None:
    for block in (IMAGE, DOCUMENT):
        response = await client.post(MESSAGES, json=messages_body([block]))
        assert_anthropic_error(response, 400, "invalid_request_error", mentions="text only")


SURROGATE = json.dumps(messages_body("\ud800")).encode()  # escaped: valid JSON, bad Unicode


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'{"model": NaN}', SURROGATE],
    ids=["syntax", "array", "nan", "lone-surrogate"],
)
async def test_a_body_that_is_not_a_request_is_a_400(
    client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.post(
        MESSAGES, content=content, headers={"content-type": "application/json"}
    )
    assert_anthropic_error(response, 400, "invalid_request_error")


async def test_a_prompt_beyond_the_context_is_a_400() -> None:
    engine = FakeEngine(max_model_len=16)
    async with serve(make_app(engine)) as client:
        response = await client.post(MESSAGES, json=messages_body("word " * 40))
    assert_anthropic_error(response, 400, "invalid_request_error", mentions="context length")


async def test_an_unknown_model_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.post(MESSAGES, json=messages_body(model="claude-opus-4-5"))
    assert_anthropic_error(response, 404, "not_found_error", mentions="claude-opus-4-5")
    response = await client.post(
        COUNT, json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert_anthropic_error(response, 404, "not_found_error")


@pytest.mark.parametrize(
    ("method", "path", "status", "error_type"),
    [
        pytest.param("GET", MESSAGES, 405, "invalid_request_error", id="method"),
        pytest.param("POST", "/v1/messages/batches", 404, "not_found_error", id="path"),
    ],
)
async def test_paths_and_methods_not_served_answer_in_anthropics_shape(
    client: httpx.AsyncClient, method: str, path: str, status: int, error_type: str
) -> None:
    response = await client.request(method, path)
    assert_anthropic_error(response, status, error_type)


async def test_other_paths_keep_openais_shape(client: httpx.AsyncClient) -> None:
    assert_openai_error(await client.post("/v1/messagesx"), 404, code="not_found")
    assert_openai_error(await client.post(CHAT, json={"model": FAKE_MODEL}), 400)


# --------------------------------------------------------------------- the edge: keys, limits
async def test_keys_by_x_api_key_or_bearer(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine, api_keys=[KEY])) as client:
        missing = await client.post(MESSAGES, json=messages_body())
        wrong = await client.post(MESSAGES, json=messages_body(), headers={"x-api-key": "sk-no"})
        by_header = await client.post(MESSAGES, json=messages_body(), headers={"x-api-key": KEY})
        bearer = {"Authorization": f"Bearer {KEY}"}
        by_bearer = await client.post(MESSAGES, json=messages_body(), headers=bearer)
        chat = await client.post(CHAT, json=chat_body(), headers={"x-api-key": KEY})
        chat_wrong = await client.post(CHAT, json=chat_body(), headers={"x-api-key": "sk-no"})
    assert_anthropic_error(missing, 401, "authentication_error", mentions="x-api-key")
    message = assert_anthropic_error(wrong, 401, "authentication_error")
    assert "sk-no" not in message and "sk-no" not in wrong.text
    assert by_header.status_code == by_bearer.status_code == 200
    assert chat.status_code == 200  # the same key header on every path
    assert_openai_error(chat_wrong, 401, code="invalid_api_key")


async def test_the_sdk_sends_its_key_as_we_expect(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY])
    async with sdk_client(app, api_key=KEY) as client:
        message = await client.messages.create(
            model=FAKE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content
        wrong = client.with_options(api_key="sk-nope")
        with pytest.raises(anthropic.AuthenticationError) as raised:
            await wrong.messages.create(
                model=FAKE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
    assert raised.value.request_id
    assert raised.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


async def test_a_body_over_the_limit_is_request_too_large(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine, max_body_bytes=1024)) as client:
        response = await client.post(MESSAGES, json=messages_body("x" * 2000))

        async def chunks() -> Any:
            for _ in range(10):
                yield b" " * 256

        chunked = await client.post(
            MESSAGES, content=chunks(), headers={"content-type": "application/json"}
        )
    assert_anthropic_error(response, 413, "request_too_large")
    assert_anthropic_error(chunked, 413, "request_too_large")


async def test_the_rate_limit_is_a_429_the_sdk_knows(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, requests_per_minute=1)
    async with serve(app) as client:
        assert (await client.post(MESSAGES, json=messages_body())).status_code == 200
        refused = await client.post(MESSAGES, json=messages_body())
    assert_anthropic_error(refused, 429, "rate_limit_error")
    assert int(refused.headers["retry-after"]) >= 1
    async with sdk_client(make_app(FakeEngine(), requests_per_minute=1)) as sdk:
        await sdk.messages.create(
            model=FAKE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(anthropic.RateLimitError):
            await sdk.messages.create(
                model=FAKE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )


# ------------------------------------------------------------- admission, deadlines, the engine
async def test_overload_is_anthropics_529_with_retry_after(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, max_inflight_sequences=1, max_queued_sequences=0)
    admission = app.state.gateway.admission
    async with serve(app) as client:
        fake_engine.gate = asyncio.Event()
        first = asyncio.create_task(client.post(MESSAGES, json=messages_body()))
        await until(lambda: admission.in_flight == 1, "the first request was admitted")
        refused = await client.post(MESSAGES, json=messages_body())
        refused_stream = await client.post(MESSAGES, json=messages_body(stream=True))
        chat_refused = await client.post(CHAT, json=chat_body())
        fake_engine.open_gate()
        assert (await first).status_code == 200
    assert_anthropic_error(refused, 529, "overloaded_error")
    assert refused.headers["retry-after"] == "1"
    assert_anthropic_error(refused_stream, 529, "overloaded_error")  # before the stream starts
    assert_openai_error(chat_refused, 503, code="overloaded")  # OpenAI's surface keeps its 503


async def test_the_sdk_raises_overloaded_for_a_529(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, max_inflight_sequences=1, max_queued_sequences=0)
    async with sdk_client(app) as client:
        fake_engine.gate = asyncio.Event()
        first = asyncio.create_task(
            client.messages.create(
                model=FAKE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        )
        await until(lambda: app.state.gateway.admission.in_flight == 1, "the first was admitted")
        with pytest.raises(anthropic.APIStatusError) as raised:
            await client.messages.create(
                model=FAKE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        fake_engine.open_gate()
        await first
    assert raised.value.status_code == 529
    assert type(raised.value).__name__ == "OverloadedError"


async def test_an_engine_still_starting_is_a_503_overloaded_error(
    settings: Settings, fake_engine: FakeEngine
) -> None:
    release = threading.Event()

    def slow_factory() -> FakeEngine:
        release.wait()
        return fake_engine

    app = create_app(settings, engine_factory=slow_factory)
    try:
        async with serve(app, wait_started=False) as client:
            response = await client.post(MESSAGES, json=messages_body())
            release.set()
    finally:
        release.set()
    assert_anthropic_error(response, 503, "overloaded_error", mentions="starting")
    assert response.headers["retry-after"] == "5"


async def test_a_passed_deadline_is_a_504_timeout_error(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine)) as client:
        fake_engine.gate = asyncio.Event()
        response = await client.post(
            MESSAGES, json=messages_body(), headers={"x-request-timeout": "0.2"}
        )
        fake_engine.open_gate()
    assert_anthropic_error(response, 504, "timeout_error")
    assert fake_engine.requests[-1].request_id in fake_engine.aborted


async def test_an_engine_failure_is_a_500_api_error_without_details(
    fake_engine: FakeEngine,
) -> None:
    # Starlette re-raises after answering (so the server logs it); the client sees the 500.
    async with serve(make_app(fake_engine), raise_app_exceptions=False) as client:
        fake_engine.fail_with = RuntimeError("secret detail")
        response = await client.post(MESSAGES, json=messages_body())
    assert_anthropic_error(response, 500, "api_error")
    assert "secret detail" not in response.text


async def test_answers_and_refusals_are_counted_under_the_route(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, max_inflight_sequences=1, max_queued_sequences=0)
    async with serve(app) as client:
        assert (await client.post(MESSAGES, json=messages_body())).status_code == 200
        fake_engine.gate = asyncio.Event()
        first = asyncio.create_task(client.post(MESSAGES, json=messages_body()))
        await until(lambda: app.state.gateway.admission.in_flight == 1, "the first was admitted")
        assert (await client.post(MESSAGES, json=messages_body())).status_code == 529
        fake_engine.open_gate()
        await first
        metrics = (await client.get("/metrics")).text
    labels = 'endpoint="/v1/messages",method="POST",model="fake-model"'
    assert f'gateway_requests_total{{{labels},outcome="success",status="200"}} 2.0' in metrics
    assert 'outcome="rejected",status="529"} 1.0' in metrics
    assert (
        'gateway_completion_tokens_total{endpoint="/v1/messages",model="fake-model"} 12.0'
        in metrics
    )

"""Request and token rate limits per key (or per client IP), in process on the fake engine.

The limiter's clock is swapped for a hand-driven one, so refills need no sleeps.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.engine.fake import FakeEngine
from service.http.ratelimit import LocalLimiter, RateLimiter
from service.http.security import SecurityPolicy
from tests.api.helpers import (
    AUTH,
    CHAT,
    KEY,
    OTHER_KEY,
    access_records,
    assert_openai_error,
    chat_body,
    engine_calls,
    fields_of,
    key_id,
    make_app,
    serve,
)
from tests.fakes import Clock


def limiter_of(app: FastAPI) -> RateLimiter:
    policy: SecurityPolicy = app.state.gateway.security
    assert isinstance(policy.limiter, LocalLimiter)
    return policy.limiter.buckets


def with_clock(app: FastAPI) -> Clock:
    clock = Clock()
    limiter_of(app).clock = clock
    return clock


async def test_over_the_request_rate_is_a_429_with_retry_after_and_no_engine_call(
    fake_engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(fake_engine, api_keys=[KEY, OTHER_KEY], requests_per_minute=2)
    clock = with_clock(app)
    caplog.set_level(logging.INFO)
    async with serve(app) as http:
        for _ in range(2):
            assert (await http.post(CHAT, json=chat_body(), headers=AUTH)).status_code == 200
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        error = assert_openai_error(response, 429, code="rate_limit_exceeded")
        assert error["type"] == "requests"
        assert response.headers["retry-after"] == "30"  # 2 a minute: one every 30 s
        assert response.headers["x-request-id"]
        assert engine_calls(fake_engine) == 2
        # Another key has its own bucket.
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        assert (await http.post(CHAT, json=chat_body(), headers=other)).status_code == 200
        clock.now += 29.2
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        assert (response.status_code, response.headers["retry-after"]) == (429, "1")
        clock.now += 0.8
        assert (await http.post(CHAT, json=chat_body(), headers=AUTH)).status_code == 200
    refused = [r for r in access_records(caplog) if fields_of(r)["status"] == 429]
    assert len(refused) == 2
    assert {fields_of(r)["outcome"] for r in refused} == {"rejected"}
    assert {fields_of(r)["key_id"] for r in refused} == {key_id(KEY)}


async def test_key_file_limits_override_the_defaults(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    file = tmp_path / "keys.toml"
    file.write_text(f'[[keys]]\nname = "tight"\nkey = "{OTHER_KEY}"\nrequests_per_minute = 1\n')
    app = make_app(fake_engine, api_keys=[KEY], api_key_file=file, requests_per_minute=100)
    with_clock(app)
    tight = {"Authorization": f"Bearer {OTHER_KEY}"}
    async with serve(app) as http:
        assert (await http.get("/v1/models", headers=tight)).status_code == 200
        response = await http.get("/v1/models", headers=tight)
        assert (response.status_code, response.headers["retry-after"]) == (429, "60")
        for _ in range(5):
            assert (await http.get("/v1/models", headers=AUTH)).status_code == 200


async def test_a_token_debt_refuses_requests_until_it_is_repaid(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY], tokens_per_minute=60)  # 1 token a second
    clock = with_clock(app)
    prompt = " ".join(["word"] * 40)
    async with serve(app) as http:
        used = 0
        for _ in range(2):  # the first fits in the bucket; the second brings it into debt
            response = await http.post(CHAT, json=chat_body(prompt), headers=AUTH)
            assert response.status_code == 200
            used += response.json()["usage"]["total_tokens"]
        assert used > 60
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        error = assert_openai_error(response, 429, code="rate_limit_exceeded")
        assert error["type"] == "tokens"
        assert response.headers["retry-after"] == str(used - 60)  # one token a second
        assert engine_calls(fake_engine) == 2  # the refused one never ran
        clock.now += used - 60 - 0.5
        assert (await http.post(CHAT, json=chat_body(), headers=AUTH)).status_code == 429
        clock.now += 0.5
        assert (await http.post(CHAT, json=chat_body(), headers=AUTH)).status_code == 200


async def test_streamed_tokens_are_charged_when_the_stream_ends(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY], tokens_per_minute=60)
    with_clock(app)
    async with serve(app) as http:
        body = chat_body(" ".join(["word"] * 80), stream=True)
        response = await http.post(CHAT, json=body, headers=AUTH)
        assert response.status_code == 200
        assert "[DONE]" in response.text
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        assert response.status_code == 429
        assert response.json()["error"]["type"] == "tokens"


async def test_without_keys_the_default_limits_apply_per_client_ip(
    fake_engine: FakeEngine,
) -> None:
    app = make_app(fake_engine, requests_per_minute=1)
    with_clock(app)
    async with serve(app) as http:
        assert (await http.get("/v1/models")).status_code == 200
        response = await http.get("/v1/models")
        assert (response.status_code, response.headers["retry-after"]) == (429, "60")
        other_ip = httpx.ASGITransport(app=app, client=("10.1.2.3", 4567))
        async with httpx.AsyncClient(transport=other_ip, base_url="http://test") as other:
            assert (await other.get("/v1/models")).status_code == 200
            assert (await other.get("/v1/models")).status_code == 429


async def test_no_limits_no_limiter(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY])
    assert app.state.gateway.security.limiter is None
    async with serve(app) as http:
        for _ in range(20):
            assert (await http.get("/v1/models", headers=AUTH)).status_code == 200


async def test_render_requests_need_the_key_but_are_not_charged(fake_engine: FakeEngine) -> None:
    """vllm-router renders each request on every replica before forwarding it: a render is
    authenticated like any API call but does not spend the caller's request rate."""
    app = make_app(fake_engine, api_keys=[KEY], requests_per_minute=1)
    with_clock(app)
    render = "/v1/chat/completions/render"
    async with serve(app) as http:
        assert (await http.post(render, json=chat_body())).status_code == 401
        for _ in range(3):
            assert (await http.post(render, json=chat_body(), headers=AUTH)).status_code == 200
        assert (await http.post(CHAT, json=chat_body(), headers=AUTH)).status_code == 200
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        assert_openai_error(response, 429, code="rate_limit_exceeded")

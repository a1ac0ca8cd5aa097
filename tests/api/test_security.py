"""API keys, rate limits, the body size limit and CORS, in process on the fake engine."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from service import context
from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.keys import KeyFileError
from service.ratelimit import RateLimiter
from service.security import SecurityPolicy
from tests.api.helpers import CHAT, assert_openai_error, chat_body, serve
from tests.api.test_observability_logs import access_records, everything_logged
from tests.conftest import FAKE_MODEL

KEY = "sk-test-4f1c2a9b7e"
OTHER_KEY = "sk-other-88d0c3"
AUTH = {"Authorization": f"Bearer {KEY}"}


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_app(fake_engine: FakeEngine, **settings: Any) -> FastAPI:
    base: dict[str, Any] = {"model": FAKE_MODEL, "default_max_tokens": 16}
    return create_app(Settings(**{**base, **settings}), engine_factory=lambda: fake_engine)


def limiter_of(app: FastAPI) -> RateLimiter:
    policy: SecurityPolicy = app.state.security
    assert policy.limiter is not None
    return policy.limiter


def with_clock(app: FastAPI) -> Clock:
    clock = Clock()
    limiter_of(app).clock = clock
    return clock


def engine_calls(engine: FakeEngine) -> int:
    """Generations the engine ran for clients (its start-up warm-up aside)."""
    return sum(1 for _, _, request_id in engine.requests if request_id != "warmup")


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, "fields", {})
    return fields


# --- API keys


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer sk-wrong"}, id="wrong-key"),
        pytest.param({"Authorization": "Bearer "}, id="empty-key"),
        pytest.param({"Authorization": f"Basic {KEY}"}, id="not-bearer"),
        pytest.param({"Authorization": f"Bearer {KEY}x"}, id="key-plus-one"),
    ],
)
async def test_a_missing_or_wrong_key_is_a_401_before_the_engine(
    fake_engine: FakeEngine, headers: dict[str, str]
) -> None:
    app = make_app(fake_engine, api_keys=[KEY])
    async with serve(app) as http:
        response = await http.post(CHAT, json=chat_body(), headers=headers)
        assert_openai_error(response, 401, code="invalid_api_key")
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["x-request-id"]  # from the observability middleware
        assert KEY not in response.text
        response = await http.get("/v1/models", headers=headers)
        assert_openai_error(response, 401, code="invalid_api_key")
        metrics = (await http.get("/metrics")).text
    assert engine_calls(fake_engine) == 0
    # Answered before routing, yet counted under its route, not `unmatched`.
    assert (
        'gateway_requests_total{endpoint="/v1/chat/completions",method="POST",'
        'outcome="client_error",status="401"} 1.0' in metrics
    )


async def test_the_right_key_is_served(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[OTHER_KEY, KEY])
    async with serve(app) as http:
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        assert response.status_code == 200, response.text
        response = await http.post(
            CHAT, json=chat_body(), headers={"authorization": f"bearer  {OTHER_KEY} "}
        )
        assert response.status_code == 200, response.text
    assert engine_calls(fake_engine) == 2


async def test_the_openai_sdk_sends_its_key_as_we_expect(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY])
    async with serve(app) as http:
        client = openai.AsyncOpenAI(
            base_url="http://test/v1", api_key=KEY, http_client=http, max_retries=0
        )
        reply = await client.chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
        wrong = openai.AsyncOpenAI(
            base_url="http://test/v1", api_key="sk-nope", http_client=http, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError) as raised:
            await wrong.models.list()
        assert raised.value.code == "invalid_api_key"


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/openapi.json", "/docs"])
async def test_probes_the_scrape_and_the_docs_need_no_key(
    fake_engine: FakeEngine, path: str
) -> None:
    app = make_app(fake_engine, api_keys=[KEY], requests_per_minute=1)
    async with serve(app) as http:
        for _ in range(3):  # and are not rate limited
            response = await http.get(path)
            assert response.status_code == 200, response.text


async def test_a_wrong_key_is_compared_with_every_stored_key_in_constant_time(
    fake_engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "keys.toml"
    file.write_text('[[keys]]\nname = "a"\nkey = "sk-file-a"\n[[keys]]\nname = "b"\nkey = "sk-b"\n')
    app = make_app(fake_engine, api_keys=[KEY, OTHER_KEY], api_key_file=file)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    async with serve(app) as http:
        response = await http.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"})
        assert response.status_code == 401
    stored = {hashlib.sha256(k).digest() for k in (KEY.encode(), OTHER_KEY.encode(), b"sk-file-a")}
    stored.add(hashlib.sha256(b"sk-b").digest())
    assert len(compared) == 4
    assert {b for _, b in compared} == stored
    assert {a for a, _ in compared} == {hashlib.sha256(b"sk-wrong").digest()}


async def test_keys_never_reach_the_logs_but_their_hashed_id_does(
    fake_engine: FakeEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "keys.toml"
    file.write_text(f'[[keys]]\nname = "team-a"\nkey = "{OTHER_KEY}"\n')
    app = make_app(fake_engine, api_keys=[KEY], api_key_file=file, log_prompts=True)
    caplog.set_level(logging.DEBUG)
    async with serve(app) as http:
        assert (await http.post(CHAT, json=chat_body(), headers=AUTH)).status_code == 200
        response = await http.post(
            CHAT, json=chat_body(stream=True), headers={"Authorization": f"Bearer {OTHER_KEY}"}
        )
        assert response.status_code == 200
        wrong = {"Authorization": f"Bearer {KEY}-almost"}
        assert (await http.post(CHAT, json=chat_body(), headers=wrong)).status_code == 401
    logged = everything_logged(caplog)
    assert KEY not in logged
    assert OTHER_KEY not in logged
    assert "Bearer" not in logged
    served, named, refused = access_records(caplog)
    assert fields_of(served)["key_id"] == key_id(KEY)
    assert "key_name" not in fields_of(served)
    assert (fields_of(named)["key_id"], fields_of(named)["key_name"]) == (
        key_id(OTHER_KEY),
        "team-a",
    )
    assert "key_id" not in fields_of(refused)  # not even the hash of a wrong key
    assert (fields_of(refused)["status"], fields_of(refused)["outcome"]) == (401, "client_error")


async def test_the_callers_priority_and_key_id_are_on_the_request_context(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    file = tmp_path / "keys.toml"
    file.write_text(
        f'[[keys]]\nname = "fast"\nkey = "{KEY}"\npriority = "high"\n'
        f'[[keys]]\nname = "slow"\nkey = "{OTHER_KEY}"\npriority = "low"\n'
        '[[keys]]\nname = "plain"\nkey = "sk-plain"\n'
    )
    app = make_app(fake_engine, api_key_file=file)

    @app.get("/whoami")
    async def whoami() -> dict[str, Any]:
        ctx = context.current()
        assert ctx is not None
        return {"priority": ctx.priority, "key_id": ctx.key_id}

    async with serve(app) as http:
        for key, priority in ((KEY, -10), (OTHER_KEY, 10), ("sk-plain", 0)):
            response = await http.get("/whoami", headers={"Authorization": f"Bearer {key}"})
            assert response.json() == {"priority": priority, "key_id": key_id(key)}


def test_an_unusable_key_file_stops_the_start(tmp_path: Path) -> None:
    file = tmp_path / "keys.toml"
    file.write_text('[[keys]]\nname = "a"\nkey = "sk-a"\npriority = "urgent"\n')
    with pytest.raises(KeyFileError, match="priority must be one of"):
        create_app(Settings(engine="fake", api_key_file=file))
    with pytest.raises(KeyFileError, match="cannot be read"):
        create_app(Settings(engine="fake", api_key_file=tmp_path / "missing.toml"))


# --- Rate limits


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
    assert app.state.security.limiter is None
    async with serve(app) as http:
        for _ in range(20):
            assert (await http.get("/v1/models", headers=AUTH)).status_code == 200


# --- Body size


async def test_a_content_length_over_the_limit_is_a_413_before_reading(
    fake_engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(fake_engine, max_body_bytes=1024)
    caplog.set_level(logging.INFO)
    async with serve(app) as http:
        response = await http.post(CHAT, json=chat_body("x" * 2000))
        assert_openai_error(response, 413, code="payload_too_large")
        assert response.headers["x-request-id"]
        assert (await http.post(CHAT, json=chat_body("x" * 500))).status_code == 200
    assert engine_calls(fake_engine) == 1
    record = access_records(caplog)[0]
    assert (fields_of(record)["status"], fields_of(record)["outcome"]) == (413, "client_error")


async def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(
    fake_engine: FakeEngine,
) -> None:
    app = make_app(fake_engine, max_body_bytes=1024)
    pulled: list[int] = []

    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = httpx.Request("POST", "/", json=chat_body("x" * total)).content
        for i in range(0, len(body), 256):
            pulled.append(i)
            yield body[i : i + 256]

    async with serve(app) as http:
        response = await http.post(
            CHAT, content=chunks(100_000), headers={"content-type": "application/json"}
        )
        assert_openai_error(response, 413, code="payload_too_large")
        assert len(pulled) == 5  # 1280 bytes: the 5th chunk passed 1024, and nothing more was read
        assert engine_calls(fake_engine) == 0
        pulled.clear()
        response = await http.post(
            CHAT, content=chunks(100), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert "content-length" not in response.request.headers


# --- CORS


def preflight_headers() -> dict[str, str]:
    return {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-request-timeout",
    }


async def test_cors_preflight_and_headers_when_configured(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY], cors_allow_origins=["https://app.example"])
    async with serve(app) as http:
        response = await http.options(CHAT, headers=preflight_headers())  # no key on a preflight
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-request-timeout"} <= set(allowed.split(", "))
        origin = {"Origin": "https://app.example"}
        response = await http.post(CHAT, json=chat_body(), headers=origin)  # no key: 401
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        exposed = response.headers["access-control-expose-headers"].lower()
        assert {"x-request-id", "retry-after"} <= set(exposed.split(", "))
        response = await http.post(CHAT, json=chat_body(), headers={**origin, **AUTH})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        evil = {**preflight_headers(), "Origin": "https://evil.example"}
        response = await http.options(CHAT, headers=evil)
        assert "access-control-allow-origin" not in response.headers


async def test_no_cors_by_default(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine)
    async with serve(app) as http:
        response = await http.options(CHAT, headers=preflight_headers())
        assert response.status_code == 405
        assert "access-control-allow-origin" not in response.headers
        response = await http.post(CHAT, json=chat_body(), headers={"Origin": "https://a.example"})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers

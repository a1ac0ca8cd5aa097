"""/health, /ready and /v1/models through the engine's life: starting, ready, failed, stopped."""

from __future__ import annotations

import threading

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from tests.api.helpers import CHAT, assert_openai_error, chat_body, serve
from tests.conftest import FAKE_MODEL, HANG_GUARD


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_once_the_engine_has_warmed_up(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    # The warm-up pushed one greedy token through the engine before /ready said yes.
    assert fake_engine.requests[0].options.max_tokens == 1
    assert fake_engine.requests[0].options.temperature == 0.0


async def test_ready_is_503_when_the_engine_turns_unhealthy(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    fake_engine.healthy = False
    response = await client.get("/ready")
    assert_openai_error(response, 503, code="engine_dead")
    assert response.headers["retry-after"] == "10"
    # The failure is final: the engine is shut down and requests are refused.
    assert fake_engine.shut_down
    chat = await client.post(CHAT, json=chat_body())
    assert_openai_error(chat, 503, code="engine_dead")


async def test_models_lists_the_served_model(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [card["id"] for card in body["data"]] == [FAKE_MODEL]
    card = body["data"][0]
    assert card["object"] == "model"
    assert card["max_model_len"] == 256
    assert isinstance(card["created"], int)
    assert isinstance(card["owned_by"], str)


async def test_served_model_name_is_what_clients_use(fake_engine: FakeEngine) -> None:
    settings = Settings(model="org/some-model", served_model_name="alias", default_max_tokens=16)
    app = create_app(settings, engine_factory=lambda: fake_engine)
    async with serve(app) as client:
        models = await client.get("/v1/models")
        by_alias = await client.post(CHAT, json={**chat_body(), "model": "alias"})
        by_path = await client.post(CHAT, json={**chat_body(), "model": "org/some-model"})
    assert [card["id"] for card in models.json()["data"]] == ["alias"]
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["model"] == "alias"
    assert_openai_error(by_path, 404, param="model", code="model_not_found")


async def test_while_starting_ready_and_requests_are_503_with_retry_after(
    settings: Settings, fake_engine: FakeEngine
) -> None:
    release = threading.Event()

    def slow_factory() -> FakeEngine:
        release.wait()  # the model "loads" until the test says so
        return fake_engine

    app = create_app(settings, engine_factory=slow_factory)
    try:
        async with serve(app, wait_started=False) as client:
            health = await client.get("/health")
            ready = await client.get("/ready")
            chat = await client.post(CHAT, json=chat_body())
            release.set()
            await app.state.gateway.engine_state.wait_started()
            ready_after = await client.get("/ready")
            chat_after = await client.post(CHAT, json=chat_body())
    finally:
        release.set()
    assert health.status_code == 200
    error = assert_openai_error(ready, 503, code="engine_unavailable")
    assert "starting" in error["message"]
    assert ready.headers["retry-after"] == "5"
    assert_openai_error(chat, 503, code="engine_unavailable")
    assert chat.headers["retry-after"] == "5"
    assert ready_after.status_code == 200
    assert chat_after.status_code == 200, chat_after.text


async def test_a_factory_failure_makes_ready_and_requests_503(settings: Settings) -> None:
    def broken_factory() -> FakeEngine:
        raise RuntimeError("CUDA out of memory at /secret/path")

    app = create_app(settings, engine_factory=broken_factory)
    async with serve(app) as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
        chat = await client.post(CHAT, json=chat_body())
    assert health.status_code == 200
    error = assert_openai_error(ready, 503, code="engine_dead")
    assert "failed to start" in error["message"]
    assert "retry-after" in ready.headers
    assert_openai_error(chat, 503, code="engine_dead")
    for response in (ready, chat):
        assert "CUDA" not in response.text
        assert "/secret/path" not in response.text


async def test_a_warm_up_failure_counts_as_a_failed_start(
    settings: Settings, fake_engine: FakeEngine
) -> None:
    fake_engine.fail_with = RuntimeError("warm-up exploded")
    app = create_app(settings, engine_factory=lambda: fake_engine)
    async with serve(app) as client:
        ready = await client.get("/ready")
    error = assert_openai_error(ready, 503, code="engine_dead")
    assert "failed to start" in error["message"]
    assert "exploded" not in ready.text


async def test_after_shutdown_the_engine_is_stopped_and_requests_are_503(
    app: FastAPI, fake_engine: FakeEngine
) -> None:
    async with serve(app):
        pass
    assert fake_engine.shut_down
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(CHAT, json=chat_body())
    error = assert_openai_error(response, 503, code="draining")
    assert "shutting down" in error["message"]


async def test_fake_engine_setting_serves_without_a_model() -> None:
    app = create_app(Settings(engine="fake", model="demo"))
    async with LifespanManager(
        app, startup_timeout=HANG_GUARD, shutdown_timeout=HANG_GUARD
    ) as manager:
        await app.state.gateway.engine_state.wait_started()
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            r = await http.post(
                "/v1/completions", json={"model": "demo", "prompt": "hi", "max_tokens": 3}
            )
    assert r.status_code == 200
    assert r.json()["usage"]["completion_tokens"] == 3

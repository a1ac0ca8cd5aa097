"""Fixtures for the fast suites: an app on the fake engine, driven in process with its lifespan."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from tests.postgres_server import PostgresServer, postgres_server
from tests.redis_server import RedisServer, redis_server

FAKE_MODEL = "fake-model"
HANG_GUARD = 30.0  # seconds: a broken implementation fails here instead of hanging


@pytest.fixture(scope="session", autouse=True)
def store_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The store's `data_dir` of every app and server process this session starts (whose
    Settings name none), instead of the user's own: migrated by the first app, found current by
    the others (a fresh store per app would add its migration to each of a thousand apps)."""
    path = tmp_path_factory.mktemp("gateway-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATEWAY_DATA_DIR", str(path))
        yield path


@pytest.fixture
def settings() -> Settings:
    return Settings(model=FAKE_MODEL, default_max_tokens=16, sse_keepalive_seconds=5)


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def app(settings: Settings, fake_engine: FakeEngine) -> FastAPI:
    return create_app(settings, engine_factory=lambda: fake_engine)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app whose engine has started (or failed to)."""
    async with LifespanManager(
        app, startup_timeout=HANG_GUARD, shutdown_timeout=HANG_GUARD
    ) as manager:
        await app.state.gateway.engine_state.wait_started()
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.fixture
def compare_digest_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every `hmac.compare_digest(a, b)` call from here on, in order (each still compares)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return calls


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of this test's own on a free loopback port, stopped at the end."""
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (started on first use), on a free loopback port;
    each test takes a database of its own (`postgres_url`)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
async def postgres_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """The `database_url` of a new, empty database on the session's PostgreSQL, dropped after."""
    name = await postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        await postgres.drop_database(name)

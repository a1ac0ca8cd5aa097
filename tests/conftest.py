"""Fixtures for the fast suites: an app on the fake engine, driven in process with its lifespan;
and the markers that say which real parts a test needs.

A test's markers follow from what it uses, so they cannot drift: the real engine (`engine`: the
`live_server` fixture, or a module's `pytestmark`), a real Redis (`redis`: `redis_process`), a
real browser (`browser`: tests/playground), server processes of its own (`processes`:
tests/replicas, tests/scale_out, tests/loadtests, tests/client, test_lifecycle), the deployment
validators (`deploy`: tests/deploy). `make test-fast` runs what needs none of them.
"""

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

# Markers by the fixture that starts a real part, and by folder (under tests/).
MARKER_OF_FIXTURE = {"live_server": "engine", "redis_process": "redis", "postgres": "postgres"}
MARKERS_OF_FOLDER = {
    "playground": ("browser", "processes"),
    "replicas": ("processes",),
    "scale_out": ("processes",),
    "loadtests": ("processes",),
    "client": ("processes",),
    "deploy": ("deploy",),
}
MARKERS_OF_MODULE = {"test_lifecycle.py": ("processes",)}

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        path = Path(str(item.path))
        folder = path.relative_to(tests).parts[0] if path.is_relative_to(tests) else ""
        names = [*MARKERS_OF_FOLDER.get(folder, ()), *MARKERS_OF_MODULE.get(path.name, ())]
        fixtures = getattr(item, "fixturenames", ())
        names += [marker for fixture, marker in MARKER_OF_FIXTURE.items() if fixture in fixtures]
        for name in names:
            item.add_marker(name)


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

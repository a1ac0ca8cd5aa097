"""The store in the app: opened (migrated) in the lifespan before the engine starts, reached by
handlers through `StoreDep`, and a store outage answered 503 `store_unavailable` in OpenAI's
error shape."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.errors import StoreUnavailableError
from service.http.deps import StoreDep
from service.store import ANONYMOUS_OWNER
from tests.api.helpers import assert_openai_error, serve
from tests.conftest import FAKE_MODEL
from tests.postgres_server import PostgresServer
from tests.processes import free_port


async def list_files(store: StoreDep) -> dict[str, list[str]]:
    """A handler on the store, as the Files routes will be."""
    listed = await store.files.list(ANONYMOUS_OWNER)
    return {"ids": [record.id for record in listed.items]}


def app_with_store_route(settings: Settings, engine: FakeEngine) -> FastAPI:
    app = create_app(settings, engine_factory=lambda: engine)
    app.add_api_route("/probe/files", list_files)
    return app


async def test_the_app_opens_its_store_before_it_serves(
    settings: Settings, fake_engine: FakeEngine
) -> None:
    app = app_with_store_route(settings, fake_engine)
    async with serve(app) as client:
        response = await client.get("/probe/files")
        assert response.status_code == 200 and response.json() == {"ids": []}
    assert (settings.data_dir / "gateway.db").is_file()


async def test_a_store_that_cannot_open_stops_the_start_before_the_engine(
    tmp_path: Path,
) -> None:
    started: list[FakeEngine] = []

    def factory() -> FakeEngine:
        started.append(FakeEngine())
        return started[-1]

    unreachable = f"postgresql://gateway@127.0.0.1:{free_port()}/gateway"
    settings = Settings(model=FAKE_MODEL, data_dir=tmp_path, database_url=unreachable)
    app = create_app(settings, engine_factory=factory)
    with pytest.raises(StoreUnavailableError, match="PostgreSQL at"):
        async with serve(app, wait_started=False):
            pass
    assert started == []


@pytest.mark.postgres
async def test_a_store_outage_is_503_store_unavailable(
    postgres: PostgresServer, postgres_url: str, tmp_path: Path, fake_engine: FakeEngine
) -> None:
    settings = Settings(
        model=FAKE_MODEL, data_dir=tmp_path, database_url=postgres_url, database_timeout_seconds=2
    )
    async with serve(app_with_store_route(settings, fake_engine)) as client:
        assert (await client.get("/probe/files")).status_code == 200
        postgres.stop()
        try:
            response: httpx.Response = await client.get("/probe/files")
        finally:
            postgres.start()
        assert_openai_error(response, 503, code="store_unavailable")
        assert response.headers["retry-after"] == "5"
        assert (await client.get("/probe/files")).status_code == 200  # back

"""A store that cannot be used is a typed 503 (`store_unavailable`), never a 500, and leaves
nothing half-written; once the database is back, the same store works again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from service.config import Settings
from service.errors import StoreUnavailableError
from service.store import Store
from tests.postgres_server import PostgresServer
from tests.processes import free_port
from tests.unit.store.helpers import chunks_of, stored_content_pieces

OWNER = "0123456789ab"


async def create(store: Store, content: bytes = b"{}\n") -> str:
    record = await store.files.create(
        OWNER, filename="in.jsonl", purpose="batch", content=chunks_of(content, 2), max_bytes=99
    )
    return record.id


def assert_typed(error: StoreUnavailableError) -> None:
    assert error.status_code == 503 and error.retry_after is not None
    assert error.body()["error"]["code"] == "store_unavailable"
    assert error.body()["error"]["type"] == "service_unavailable"


@pytest.mark.postgres
async def test_a_postgres_outage_is_a_typed_error_and_the_store_comes_back(
    postgres: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, database_timeout_seconds=2)
    store = Store.from_settings(settings)
    await store.open()
    try:
        kept = await create(store)
        postgres.stop()
        try:
            with pytest.raises(StoreUnavailableError) as raised:
                await store.files.list(OWNER)
            assert_typed(raised.value)
            with pytest.raises(StoreUnavailableError):
                await store.files.get(OWNER, kept)
            with pytest.raises(StoreUnavailableError):
                await create(store, b"lost")
        finally:
            postgres.start()
        # Back: the pool's cut connections are replaced; the failed upload left nothing.
        assert [f.id for f in (await store.files.list(OWNER)).items] == [kept]
        assert await stored_content_pieces(store) == 1
    finally:
        await store.close()


@contextmanager
def sqlite_write_lock(database: Path) -> Iterator[None]:
    """Another process's transaction holding SQLite's write lock."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_sqlite_locked_past_the_timeout_is_a_typed_error(tmp_path: Path) -> None:
    store = Store.from_settings(Settings(data_dir=tmp_path, database_timeout_seconds=0.1))
    await store.open()
    try:
        assert store.database.sqlite_file is not None
        with sqlite_write_lock(store.database.sqlite_file):
            with pytest.raises(StoreUnavailableError) as raised:
                await create(store)
            assert_typed(raised.value)
        assert (await store.files.list(OWNER)).items == []
        assert await stored_content_pieces(store) == 0  # its content went with it
        await create(store)  # the lock gone, it works
    finally:
        await store.close()


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(
            lambda tmp: Settings(
                data_dir=tmp,
                database_url=f"postgresql://gateway:s3cret@127.0.0.1:{free_port()}/gateway",
                database_timeout_seconds=2,
            ),
            id="postgres-unreachable",
        ),
        pytest.param(lambda tmp: Settings(data_dir=tmp / "a-file"), id="data-dir-not-a-folder"),
    ],
)
async def test_a_store_that_cannot_open_fails_naming_it(
    tmp_path: Path, settings: Callable[[Path], Settings]
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    store = Store.from_settings(settings(tmp_path))
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await store.open()
    finally:
        await store.close()
    assert_typed(raised.value)
    assert store.where in raised.value.message
    assert "s3cret" not in raised.value.message  # the password is not shown


@pytest.mark.postgres
async def test_a_misnamed_postgres_database_fails_naming_it(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    store = Store.from_settings(Settings(data_dir=tmp_path, database_url=postgres.url("nosuch")))
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await store.open()
    finally:
        await store.close()
    assert store.where in raised.value.message
    assert 'database "nosuch" does not exist' in raised.value.message

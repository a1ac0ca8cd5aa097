"""The store on each of its backends: SQLite in a temporary data directory, and a database of its
own on the session's real PostgreSQL (marker `postgres`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.config import Settings
from service.store import Store

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings naming an empty store on the backend of the parameter."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    url: str = request.getfixturevalue("postgres_url")
    return Settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
async def store(store_settings: Settings) -> AsyncIterator[Store]:
    """A migrated store, closed at the end."""
    opened = Store.from_settings(store_settings)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()

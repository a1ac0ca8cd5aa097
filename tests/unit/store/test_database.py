"""Which database the settings name, with which driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Settings
from service.store.database import database_url


def test_without_a_url_the_store_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = database_url(Settings(data_dir=tmp_path))
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "gateway.db")


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://gw:pw@db.internal:5433/gateway",
        "postgres://gw:pw@db.internal:5433/gateway",
        "postgresql+asyncpg://gw:pw@db.internal:5433/gateway",
    ],
)
def test_a_postgres_url_is_used_with_asyncpg(given: str) -> None:
    url = database_url(Settings(database_url=given))
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "gw",
        "pw",
        "db.internal",
        5433,
        "gateway",
    )

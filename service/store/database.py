"""The store's database: the async engine on SQLite (a file under `data_dir`) or PostgreSQL
(`database_url`, asyncpg), its sessions, and the one place where a database that cannot be
used becomes 503 `store_unavailable` (`unavailable_as_error`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from service.config import Settings
from service.errors import StoreUnavailableError

SQLITE_FILE = "gateway.db"

# What a database that is down, unreachable, locked past the timeout or out of disk raises.
# A refused connection comes as the OS's error; asyncpg's own at connect time come unwrapped.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionRefusedError, TimeoutError, a full disk
    exc.OperationalError,  # SQLite: locked, cannot open; PostgreSQL: connection lost
    exc.InterfaceError,  # a closed connection
    exc.TimeoutError,  # no pooled connection free within the timeout
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.InterfaceError,
)


def is_unavailable(err: BaseException) -> bool:
    """Whether `err` says the database cannot be used now (rather than a bug)."""
    if isinstance(err, exc.DBAPIError) and err.connection_invalidated:
        return True
    return isinstance(err, _UNAVAILABLE)


@contextmanager
def unavailable_as_error(what: str) -> Iterator[None]:
    """Turn a database (or file system) that cannot be used into `StoreUnavailableError`;
    anything else, such as a constraint violated by a bug, stays what it is."""
    try:
        yield
    except Exception as err:
        if not is_unavailable(err):
            raise
        raise StoreUnavailableError(
            f"The store is unavailable ({what}: {type(err).__name__}); retry later."
        ) from err


def sqlite_path(settings: Settings) -> Path:
    return settings.data_dir / SQLITE_FILE


def database_url(settings: Settings) -> URL:
    """`database_url` with the asyncpg driver, or the SQLite file under `data_dir`."""
    if settings.database_url is None:
        return URL.create("sqlite+aiosqlite", database=str(sqlite_path(settings)))
    return make_url(settings.database_url.get_secret_value()).set(drivername="postgresql+asyncpg")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers do not wait for the writer; NORMAL is crash-safe in WAL (a kill -9 loses
    # nothing committed; only a power cut may lose the last transactions).
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class Database:
    """One async engine and its sessions. Creating it connects to nothing."""

    def __init__(self, url: URL, *, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        # `timeout` is SQLite's busy timeout (how long a writer waits for the lock) and
        # asyncpg's connect timeout. pre_ping: a pooled connection that a database restart
        # cut is replaced, not used.
        self.engine: AsyncEngine = create_async_engine(
            url, connect_args={"timeout": timeout}, pool_pre_ping=True, pool_timeout=timeout
        )
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings), timeout=settings.database_timeout_seconds)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`: for the few statements that differ."""
        return self.engine.dialect.name

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file; None on PostgreSQL."""
        return Path(self.url.database) if self.dialect == "sqlite" and self.url.database else None

    @asynccontextmanager
    async def session(self, what: str = "database") -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed when the block ends, rolled back if it raises;
        a database that cannot be used raises `StoreUnavailableError`."""
        with unavailable_as_error(what):
            async with self._sessions.begin() as session:
                yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

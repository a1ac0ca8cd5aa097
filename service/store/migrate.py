"""The migration runner: brings the store's schema up to the newest revision at start-up, once,
however many replicas start together.

A start that finds the schema current (every start but the first after an upgrade) only reads
its revision: no lock, no migration scripts run. One that finds a newer schema than it knows
(an older replica during a rolling update) leaves it as it is.

On PostgreSQL the upgrade runs in one transaction that first takes a transaction-level advisory
lock: a replica that starts beside another waits for it, then finds the schema current (and a
failed migration rolls back whole: PostgreSQL's DDL is transactional). On SQLite the database
file is local, so a lock file beside it (`flock`) orders the processes that share it.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from service.store.database import Database

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant shared by every replica; the gateway takes no other advisory lock.
ADVISORY_LOCK_ID = 0x6C6C6D5F67617465  # "llm_gate"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file: the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str | None:
    """The newest revision the package ships."""
    return _scripts().get_current_head()


def _knows(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    with path.open("a") as handle:
        # flock waits in a thread; the lock goes with the file's closing, whatever happens.
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        yield


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade(database: Database) -> None:
    """Migrate `database` to the head revision (a no-op when it is there)."""
    sqlite_file = database.sqlite_file
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    async with database.engine.connect() as connection:
        current = await connection.run_sync(_current_revision)
    if current == head_revision():
        return
    if current is not None and not _knows(current):
        logger.warning(
            "the store's schema (revision %s) is newer than this version's (%s): left as it is",
            current,
            head_revision(),
        )
        return
    await _upgrade_locked(database)


async def _upgrade_locked(database: Database) -> None:
    sqlite_file = database.sqlite_file
    if sqlite_file is not None:
        lock = sqlite_file.with_name(sqlite_file.name + ".migrate-lock")
        async with _file_lock(lock), database.engine.begin() as connection:
            await connection.run_sync(_upgrade)
        return
    async with database.engine.begin() as connection:
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID}
        )
        await connection.run_sync(_upgrade)

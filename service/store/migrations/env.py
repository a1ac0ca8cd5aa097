"""Alembic's environment. At start-up the gateway hands it a connection, in a transaction that
holds the migration lock (`service/store/migrate.py`); from the `alembic` command line
(`alembic.ini` at the repository root: `alembic revision --autogenerate -m "..."`) it opens the
store the settings name (`GATEWAY_DATA_DIR`, `GATEWAY_DATABASE_URL`)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from service.store.tables import Base


def run_migrations(connection: Connection) -> None:
    # Batch mode: SQLite alters a table by copying it, which autogenerate then writes out.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():  # none of its own inside the caller's transaction
        context.run_migrations()


async def run_on_configured_store() -> None:
    from service.config import Settings
    from service.store.database import Database

    database = Database.from_settings(Settings())
    if database.sqlite_file is not None:
        database.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await database.dispose()


given: Connection | None = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    asyncio.run(run_on_configured_store())

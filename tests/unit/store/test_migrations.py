"""The store's migrations: up from empty, once when replicas start together, and in step with the
tables the code declares."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from service.config import Settings
from service.store.database import Database
from service.store.migrate import alembic_config, head_revision, upgrade
from service.store.tables import Base


def _state(connection: Connection) -> tuple[str | None, set[str], list[Any]]:
    """The schema's revision, its tables, and how it differs from the declared tables."""
    context = MigrationContext.configure(connection)
    diff = compare_metadata(context, Base.metadata)
    return context.get_current_revision(), set(inspect(connection).get_table_names()), diff


async def schema_state(database: Database) -> tuple[str | None, set[str], list[Any]]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(_state)


async def test_migrations_bring_an_empty_store_to_the_declared_tables(
    store_settings: Settings,
) -> None:
    database = Database.from_settings(store_settings)
    try:
        await upgrade(database)
        revision, tables, diff = await schema_state(database)
    finally:
        await database.dispose()
    assert revision == head_revision() is not None
    assert set(Base.metadata.tables) <= tables
    assert diff == [], "a table changed without a migration: alembic revision --autogenerate"


async def test_the_migrations_go_down_to_nothing_and_up_again(store_settings: Settings) -> None:
    database = Database.from_settings(store_settings)
    try:
        await upgrade(database)
        async with database.engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        revision, tables, _ = await schema_state(database)
        assert revision is None and tables & set(Base.metadata.tables) == set()
        await upgrade(database)
        revision, _, diff = await schema_state(database)
    finally:
        await database.dispose()
    assert revision == head_revision() and diff == []


async def test_a_second_start_finds_the_schema_current(store_settings: Settings) -> None:
    database = Database.from_settings(store_settings)
    try:
        await upgrade(database)
        await upgrade(database)
        revision, _, diff = await schema_state(database)
    finally:
        await database.dispose()
    assert revision == head_revision()
    assert diff == []


async def test_replicas_starting_together_migrate_once(store_settings: Settings) -> None:
    """Three processes' worth of engines on one empty database, migrating at the same time: the
    lock lets one migrate while the others wait, then find the schema current (without it,
    they race to create the same tables and all but one fail)."""
    replicas = [Database.from_settings(store_settings) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(database) for database in replicas))
        states = [await schema_state(database) for database in replicas]
    finally:
        for database in replicas:
            await database.dispose()
    assert {revision for revision, _, _ in states} == {head_revision()}
    assert all(diff == [] for _, _, diff in states)


async def test_a_newer_schema_is_left_as_it_is(store_settings: Settings) -> None:
    """An older replica restarting during a rolling update finds a revision it does not know:
    it starts on the schema as it is instead of failing."""
    database = Database.from_settings(store_settings)
    try:
        await upgrade(database)
        async with database.engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = 'v9999'"))
        await upgrade(database)
        revision, tables, _ = await schema_state(database)
    finally:
        await database.dispose()
    assert revision == "v9999"
    assert set(Base.metadata.tables) <= tables

"""The runtime keys repository: API keys admin keys make, change and delete at runtime.

Only a key's SHA-256 is stored (`digest`), with the key's public id (the digest's prefix, as
the logs show it), its name, a redacted form for listings, its limits, priority, weight and
budgets. Deleting a key revokes it (`revoked_at`): the row stays so that usage reports still
name it, and its name may be given to a new key. Every replica reads the live keys
(`active`) in the background; nothing here is on a request's path.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import exc, select, update

from service.store.database import Database
from service.store.operations import store_operations
from service.store.tenant_tables import RuntimeKeyRow

# What an admin may change on a key after making it.
CHANGEABLE = (
    "admin",
    "priority",
    "weight",
    "requests_per_minute",
    "tokens_per_minute",
    "tokens_per_day",
    "tokens_per_month",
)


class DuplicateKeyError(ValueError):
    """A live key already has this name (or, at 2^-128, this digest)."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    digest: str  # sha256 hex of the key
    name: str
    redacted_value: str
    owner: str
    admin: bool
    priority: int
    weight: float
    requests_per_minute: int | None
    tokens_per_minute: int | None
    tokens_per_day: int | None
    tokens_per_month: int | None
    created_at: int
    expires_at: int | None
    revoked_at: int | None = None

    @classmethod
    def of(cls, row: RuntimeKeyRow) -> KeyRecord:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


@store_operations
class RuntimeKeys:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, record: KeyRecord) -> KeyRecord:
        """Store a new key; `DuplicateKeyError` when a live key has its name."""
        values = {f.name: getattr(record, f.name) for f in fields(KeyRecord)}
        try:
            async with self._database.session("api keys") as session:
                taken = await session.scalar(
                    select(RuntimeKeyRow.id).where(
                        RuntimeKeyRow.name == record.name, RuntimeKeyRow.revoked_at.is_(None)
                    )
                )
                if taken is not None:
                    raise DuplicateKeyError(record.name)
                session.add(RuntimeKeyRow(**values))
        except exc.IntegrityError as err:  # the same digest: a key made twice
            raise DuplicateKeyError(record.name) from err
        return record

    async def active(self) -> list[KeyRecord]:
        """The keys not revoked (expired ones included: the lookup refuses them)."""
        async with self._database.session("api keys") as session:
            rows = await session.scalars(
                select(RuntimeKeyRow)
                .where(RuntimeKeyRow.revoked_at.is_(None))
                .order_by(RuntimeKeyRow.seq)
            )
            return [KeyRecord.of(row) for row in rows]

    async def names(self) -> dict[str, str]:
        """{key id: name} of every key ever made here, revoked ones too (for usage reports)."""
        async with self._database.session("api keys") as session:
            rows = await session.execute(select(RuntimeKeyRow.id, RuntimeKeyRow.name))
            return {key_id: name for key_id, name in rows}

    async def get(self, key_id: str) -> KeyRecord | None:
        """A live key by its public id."""
        async with self._database.session("api keys") as session:
            row = await session.scalar(
                select(RuntimeKeyRow).where(
                    RuntimeKeyRow.id == key_id, RuntimeKeyRow.revoked_at.is_(None)
                )
            )
        return None if row is None else KeyRecord.of(row)

    async def change(self, key_id: str, changes: dict[str, Any]) -> KeyRecord | None:
        """Set `changes` (names from `CHANGEABLE`) on a live key; None when there is none."""
        unknown = set(changes) - set(CHANGEABLE)
        if unknown:
            raise ValueError(f"not changeable: {', '.join(sorted(unknown))}")
        async with self._database.session("api keys") as session:
            live = (RuntimeKeyRow.id == key_id, RuntimeKeyRow.revoked_at.is_(None))
            if changes:
                await session.execute(update(RuntimeKeyRow).where(*live).values(**changes))
            row = await session.scalar(select(RuntimeKeyRow).where(*live))
        return None if row is None else KeyRecord.of(row)

    async def revoke(self, key_id: str, *, at: int) -> bool:
        """Revoke a live key; False when there is none."""
        async with self._database.session("api keys") as session:
            done = await session.execute(
                update(RuntimeKeyRow)
                .where(RuntimeKeyRow.id == key_id, RuntimeKeyRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return bool(done.rowcount)  # type: ignore[attr-defined]  # a CursorResult's

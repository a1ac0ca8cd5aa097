"""The usage repository: tokens and requests by minute, key, model and surface, and the budgets'
ledger (tokens per key per UTC day and month).

Replicas add what they counted since their last write (`add`, one transaction, a few rows a
second at most) to the same rows: an upsert adds to the row's sums, so the store holds every
replica's usage and one budget holds across them. Reports sum minutes into buckets in the
database (`buckets`); budgets read the current windows' totals (`window_totals`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute

from service.store.database import Database
from service.store.operations import store_operations
from service.store.tenant_tables import TokenLedgerRow, UsageRow

Surface = Literal["completions", "embeddings"]
Window = Literal["day", "month"]
GroupField = Literal["api_key_id", "model", "batch"]

# {(minute, surface, key id, model, batch): [input tokens, output tokens, requests]}
UsageKey = tuple[int, str, str, str, bool]
# {(key id, window, its first second): tokens}
LedgerKey = tuple[str, str, int]

_GROUP_COLUMNS: dict[GroupField, InstrumentedAttribute[Any]] = {
    "api_key_id": UsageRow.key_id,
    "model": UsageRow.model,
    "batch": UsageRow.batch,
}


@dataclass(frozen=True, slots=True)
class UsageSums:
    bucket: int  # the bucket's index from the query's start
    input_tokens: int
    output_tokens: int
    requests: int
    group: dict[str, Any]  # the grouped fields' values (`api_key_id`, `model`, `batch`)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    surface: Surface
    start: int  # Unix seconds, inclusive
    end: int  # exclusive
    width: int  # seconds per bucket
    group_by: Sequence[GroupField] = ()
    key_ids: Sequence[str] | None = None  # None: every key
    models: Sequence[str] | None = None
    batch: bool | None = None  # None: both


def _upsert(dialect: str) -> Any:
    return sqlite.insert if dialect == "sqlite" else postgresql.insert


@store_operations
class UsageStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(
        self, usage: Mapping[UsageKey, Sequence[int]], ledger: Mapping[LedgerKey, int]
    ) -> None:
        """Add to the stored sums, in one transaction (all of it or nothing)."""
        insert = _upsert(self._database.dialect)
        async with self._database.session("usage") as session:
            if usage:
                rows = [
                    {
                        "minute": minute,
                        "surface": surface,
                        "key_id": key_id,
                        "model": model,
                        "batch": batch,
                        "input_tokens": sums[0],
                        "output_tokens": sums[1],
                        "requests": sums[2],
                    }
                    for (minute, surface, key_id, model, batch), sums in sorted(usage.items())
                ]
                statement = insert(UsageRow).values(rows)
                added = statement.excluded
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["minute", "surface", "key_id", "model", "batch"],
                        set_={
                            "input_tokens": UsageRow.input_tokens + added.input_tokens,
                            "output_tokens": UsageRow.output_tokens + added.output_tokens,
                            "requests": UsageRow.requests + added.requests,
                        },
                    )
                )
            if ledger:
                rows = [
                    {"key_id": key_id, "window": window, "starts_at": starts_at, "tokens": tokens}
                    for (key_id, window, starts_at), tokens in sorted(ledger.items())
                ]
                statement = insert(TokenLedgerRow).values(rows)
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["key_id", "window", "starts_at"],
                        set_={"tokens": TokenLedgerRow.tokens + statement.excluded.tokens},
                    )
                )

    async def window_totals(self, windows: Iterable[tuple[Window, int]]) -> dict[LedgerKey, int]:
        """Every key's tokens in each of `windows` ((window, its first second))."""
        clauses = [
            and_(TokenLedgerRow.window == window, TokenLedgerRow.starts_at == starts_at)
            for window, starts_at in windows
        ]
        if not clauses:
            return {}
        async with self._database.session("usage") as session:
            rows = await session.execute(
                select(
                    TokenLedgerRow.key_id,
                    TokenLedgerRow.window,
                    TokenLedgerRow.starts_at,
                    TokenLedgerRow.tokens,
                ).where(or_(*clauses))
            )
            return {
                (key_id, window, starts_at): tokens for key_id, window, starts_at, tokens in rows
            }

    async def buckets(self, query: UsageQuery) -> list[UsageSums]:
        """Sums per bucket (and per group), in bucket order; buckets without usage are absent."""
        statement = _bucket_statement(query)
        async with self._database.session("usage") as session:
            rows = (await session.execute(statement)).all()
        return [
            UsageSums(
                bucket=int(row[0]),
                input_tokens=int(row[1] or 0),
                output_tokens=int(row[2] or 0),
                requests=int(row[3] or 0),
                group=dict(zip(query.group_by, row[4:], strict=True)),
            )
            for row in rows
        ]

    async def prune(self, *, usage_before: int, ledger_before: int) -> None:
        """Forget usage minutes before `usage_before` and ledger windows that started before
        `ledger_before` (Unix seconds)."""
        async with self._database.session("usage") as session:
            await session.execute(delete(UsageRow).where(UsageRow.minute < usage_before))
            await session.execute(
                delete(TokenLedgerRow).where(TokenLedgerRow.starts_at < ledger_before)
            )


def _bucket_statement(query: UsageQuery) -> Select[Any]:
    bucket = ((UsageRow.minute - query.start) // query.width).label("bucket")
    groups = [_GROUP_COLUMNS[name] for name in query.group_by]
    statement = select(
        bucket,
        func.sum(UsageRow.input_tokens),
        func.sum(UsageRow.output_tokens),
        func.sum(UsageRow.requests),
        *groups,
    ).where(
        UsageRow.surface == query.surface,
        UsageRow.minute >= query.start,
        UsageRow.minute < query.end,
    )
    if query.key_ids is not None:
        statement = statement.where(UsageRow.key_id.in_(query.key_ids))
    if query.models is not None:
        statement = statement.where(UsageRow.model.in_(query.models))
    if query.batch is not None:
        statement = statement.where(UsageRow.batch.is_(query.batch))
    return statement.group_by(bucket, *groups).order_by(bucket, *groups)

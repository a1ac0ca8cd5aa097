"""A batch's lines as the drainers run them: claimed under a lease, renewed while they run,
handed back for later, finished with their one result, expired with their batch.

A line is claimable when it is `pending` (and its `lease_until`, then a not-before time, has
passed) or `running` with a lease that ran out: the replica that held it died. Claims are one
statement: `UPDATE ... WHERE (batch_id, line) IN (SELECT ... LIMIT n)`, whose subquery on
PostgreSQL takes its rows `FOR UPDATE SKIP LOCKED` (replicas claiming at once take different
lines, without waiting for each other), and on SQLite runs inside the statement's write lock
(one writer at a time: the UPDATE is atomic).

A result is stored only while the line is unfinished (`pending` or `running`), in one
transaction with its batch's counts: a line that ran twice (its lease ran out while it ran, or
its replica died after the engine answered) keeps the first result stored, and the second
finds it finished and is dropped. So every `custom_id` gets exactly one result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select, tuple_, update

from service.store.batches import UNFINISHED
from service.store.database import Database
from service.store.operations import store_operations
from service.store.tables import BatchLineRow, BatchRow


@dataclass(frozen=True, slots=True, order=True)
class LineKey:
    batch_id: str
    line: int


@dataclass(frozen=True, slots=True)
class ClaimedLine:
    key: LineKey
    custom_id: str
    body: dict[str, Any]
    attempts: int  # claims so far, this one included


@dataclass(frozen=True, slots=True)
class LineResult:
    """A line's one result: `result` is `{"response": ..., "error": ...}` of its output line
    (OpenAI's format, less its ids); `status_code` is the response's, None without one."""

    status: Literal["succeeded", "failed"]
    status_code: int | None
    result: dict[str, Any]
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    stored: bool  # this result is the line's (else it already had one: dropped)
    batch_done: bool  # every line of its batch has a result now


def _keys(keys: Iterable[LineKey]) -> Any:
    return tuple_(BatchLineRow.batch_id, BatchLineRow.line).in_(
        [(key.batch_id, key.line) for key in keys]
    )


def _key(key: LineKey) -> Any:
    return and_(BatchLineRow.batch_id == key.batch_id, BatchLineRow.line == key.line)


@store_operations
class BatchLines:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def claim(
        self, replica: str, limit: int, *, now: float, lease: float
    ) -> list[ClaimedLine]:
        """Up to `limit` claimable lines of batches in progress, oldest batch first, now
        `running` under this replica's lease until `now + lease`."""
        claimable = or_(
            and_(
                BatchLineRow.status == "pending",
                or_(BatchLineRow.lease_until.is_(None), BatchLineRow.lease_until <= now),
            ),
            and_(BatchLineRow.status == "running", BatchLineRow.lease_until <= now),
        )
        candidates = (
            select(BatchLineRow.batch_id, BatchLineRow.line)
            .join(BatchRow, BatchRow.id == BatchLineRow.batch_id)
            .where(BatchRow.status == "in_progress", BatchRow.expires_at > now, claimable)
            .order_by(BatchRow.seq, BatchLineRow.line)
            .limit(limit)
        )
        if self._database.dialect == "postgresql":
            candidates = candidates.with_for_update(of=BatchLineRow, skip_locked=True)
        statement = (
            update(BatchLineRow)
            .where(tuple_(BatchLineRow.batch_id, BatchLineRow.line).in_(candidates))
            .values(
                status="running",
                claimed_by=replica,
                lease_until=now + lease,
                attempts=BatchLineRow.attempts + 1,
            )
            .returning(
                BatchLineRow.batch_id,
                BatchLineRow.line,
                BatchLineRow.custom_id,
                BatchLineRow.body,
                BatchLineRow.attempts,
            )
        )
        async with self._database.session("batch lines") as session:
            rows = (await session.execute(statement)).all()
        claimed = [ClaimedLine(LineKey(r[0], r[1]), r[2], r[3], r[4]) for r in rows]
        return sorted(claimed, key=lambda line: line.key)

    async def renew(self, replica: str, keys: Iterable[LineKey], *, until: float) -> set[LineKey]:
        """Extend this replica's leases on `keys`; the ones it still holds (a line expired,
        cancelled or claimed by another replica meanwhile is left out)."""
        keys = list(keys)
        if not keys:
            return set()
        mine = and_(
            _keys(keys), BatchLineRow.claimed_by == replica, BatchLineRow.status == "running"
        )
        async with self._database.session("batch lines") as session:
            await session.execute(update(BatchLineRow).where(mine).values(lease_until=until))
            rows = (
                await session.execute(select(BatchLineRow.batch_id, BatchLineRow.line).where(mine))
            ).all()
        return {LineKey(r[0], r[1]) for r in rows}

    async def release(self, key: LineKey, replica: str, *, not_before: float, ran: bool) -> None:
        """Hand a line back, to be claimed again from `not_before` on (a transient refusal:
        rate limit, overload, deadline); a line that did not run gives its attempt back."""
        values: dict[str, Any] = {
            "status": "pending",
            "claimed_by": None,
            "lease_until": not_before,
        }
        if not ran:
            values["attempts"] = BatchLineRow.attempts - 1
        async with self._database.session("batch lines") as session:
            await session.execute(
                update(BatchLineRow)
                .where(
                    _key(key), BatchLineRow.claimed_by == replica, BatchLineRow.status == "running"
                )
                .values(**values)
            )

    async def finish(self, key: LineKey, outcome: LineResult, *, now: float) -> Finished:
        """Store the line's result unless it already has one (or expired, or was cancelled)."""
        async with self._database.session("batch lines") as session:
            stored = await session.execute(
                update(BatchLineRow)
                .where(_key(key), BatchLineRow.status.in_(UNFINISHED))
                .values(
                    status=outcome.status,
                    response_status=outcome.status_code,
                    result=outcome.result,
                    finished_at=int(now),
                    claimed_by=None,
                    lease_until=None,
                )
            )
            if not stored.rowcount:  # type: ignore[attr-defined]  # a CursorResult's
                return Finished(stored=False, batch_done=False)
            counts: dict[str, Any] = {
                "input_tokens": BatchRow.input_tokens + outcome.input_tokens,
                "output_tokens": BatchRow.output_tokens + outcome.output_tokens,
            }
            if outcome.status == "succeeded":
                counts["completed"] = BatchRow.completed + 1
            else:
                counts["failed"] = BatchRow.failed + 1
            total, completed, failed = (
                await session.execute(
                    update(BatchRow)
                    .where(BatchRow.id == key.batch_id)
                    .values(**counts)
                    .returning(BatchRow.total, BatchRow.completed, BatchRow.failed)
                )
            ).one()
        return Finished(stored=True, batch_done=completed + failed >= total)

    async def expire(self, *, now: float) -> int:
        """Mark the unfinished lines of batches in progress past their window `expired`; how
        many."""
        due = select(BatchRow.id).where(
            BatchRow.status == "in_progress", BatchRow.expires_at <= now
        )
        async with self._database.session("batch lines") as session:
            expired = await session.execute(
                update(BatchLineRow)
                .where(BatchLineRow.batch_id.in_(due), BatchLineRow.status.in_(UNFINISHED))
                .values(status="expired", finished_at=int(now), claimed_by=None, lease_until=None)
            )
        return int(expired.rowcount)  # type: ignore[attr-defined]  # a CursorResult's

    async def waiting(self) -> int:
        """Lines of batches in progress not yet run: the metrics' backlog."""
        async with self._database.session("batch lines") as session:
            count = await session.scalar(
                select(func.count())
                .select_from(BatchLineRow)
                .join(BatchRow, BatchRow.id == BatchLineRow.batch_id)
                .where(BatchRow.status == "in_progress", BatchLineRow.status == "pending")
            )
        return int(count or 0)

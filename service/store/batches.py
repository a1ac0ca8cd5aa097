"""The batches repository: a batch as its owner sees it (OpenAI's batch object), made whole or
not at all, listed, cancelled; and the last step of its run, which writes its output files.

Every call of the API side takes the owner (`tables.py`: another owner's batch is None, as for
an unknown id). The drainer's calls (`ready`, `claim_finalization`, `results`, `complete`) work
across owners, and take `now` from their caller, whose clock the tests set.

A batch is created in one transaction with all its lines (`create`), so the store holds either
the whole batch or none of it. Its last step (`claim_finalization` ... `complete`) runs under a
lease like a line's: the replica that claims it writes the output and error contents, then in
one transaction records both files and the batch's final status, so a replica that dies
half-way leaves nothing behind but contents no row names, and another replica redoes it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, or_, select, update

from service.store.batch_records import (
    CANCELLABLE,
    INSERT_ROWS,
    LIST_LIMIT,
    TERMINAL,
    UNFINISHED,
    BatchFiles,
    BatchRecord,
    BatchStatus,
    Cancelled,
    LineRecord,
    LineStatus,
    NewBatch,
    NewLine,
    new_batch_id,
)
from service.store.database import Database
from service.store.files import Files
from service.store.operations import store_operations
from service.store.paging import Page, keyset, page
from service.store.tables import BatchLineRow, BatchRow

__all__ = [
    "CANCELLABLE",
    "INSERT_ROWS",
    "LIST_LIMIT",
    "TERMINAL",
    "UNFINISHED",
    "BatchFiles",
    "BatchRecord",
    "BatchStatus",
    "Batches",
    "Cancelled",
    "LineRecord",
    "LineStatus",
    "NewBatch",
    "NewLine",
    "new_batch_id",
]


def _unfinished_lines() -> Any:
    return exists().where(BatchLineRow.batch_id == BatchRow.id, BatchLineRow.status.in_(UNFINISHED))


def _lease_free(now: float) -> Any:
    return or_(BatchRow.lease_until.is_(None), BatchRow.lease_until <= now)


@store_operations
class Batches:
    def __init__(
        self, database: Database, files: Files, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._database = database
        self._files = files
        self.clock = clock
        # Told when a batch is created or cancelled here: this replica's drainer starts its
        # lines (or finishes it) at once instead of at its next look.
        self._listeners: list[Callable[[], None]] = []

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _tell(self) -> None:
        for listener in self._listeners:
            listener()

    async def create(
        self, owner: str, new: NewBatch, lines: AsyncIterable[Sequence[NewLine]]
    ) -> BatchRecord:
        """A batch `in_progress` with every line of `lines`, in one transaction: a failure
        anywhere (the store, reading the input) leaves no batch at all."""
        now = int(self.clock())
        row = new.row(owner, "in_progress", now)
        row.in_progress_at = now
        async with self._database.session("batches") as session:
            session.add(row)
            await session.flush()
            async for chunk in lines:
                values = [
                    {
                        "batch_id": row.id,
                        "line": line.line,
                        "custom_id": line.custom_id,
                        "body": line.body,
                        "status": "pending",
                        "attempts": 0,
                    }
                    for line in chunk
                ]
                if values:
                    await session.execute(insert(BatchLineRow), values)
                    row.total += len(values)
        self._tell()
        return BatchRecord.of(row)

    async def create_failed(
        self, owner: str, new: NewBatch, errors: list[dict[str, Any]]
    ) -> BatchRecord:
        """A batch whose input failed validation: `failed`, with `errors`, and no lines."""
        now = int(self.clock())
        row = new.row(owner, "failed", now)
        row.failed_at = now
        row.errors = errors
        async with self._database.session("batches") as session:
            session.add(row)
        return BatchRecord.of(row)

    async def get(self, owner: str, batch_id: str) -> BatchRecord | None:
        async with self._database.session("batches") as session:
            row = await session.scalar(
                select(BatchRow).where(BatchRow.owner == owner, BatchRow.id == batch_id)
            )
        return None if row is None else BatchRecord.of(row)

    async def list(
        self, owner: str, *, after: str | None = None, limit: int = 20
    ) -> Page[BatchRecord]:
        """The owner's batches, newest first; `after` is the last id of the previous page."""
        statement = select(BatchRow).where(BatchRow.owner == owner)
        cursor = None
        if after is not None:
            cursor = select(BatchRow.seq).where(BatchRow.owner == owner, BatchRow.id == after)
        statement = keyset(statement, BatchRow.seq, after_seq=cursor, order="desc", limit=limit)
        async with self._database.session("batches") as session:
            rows = (await session.scalars(statement)).all()
        return page([BatchRecord.of(row) for row in rows], limit)

    async def cancel(self, owner: str, batch_id: str) -> Cancelled | None:
        """`cancelling` from `validating` or `in_progress`, its lines not yet started
        `cancelled` (those running finish, and their results stay); None: no such batch."""
        now = int(self.clock())
        async with self._database.session("batches") as session:
            flipped = await session.execute(
                update(BatchRow)
                .where(
                    BatchRow.owner == owner,
                    BatchRow.id == batch_id,
                    BatchRow.status.in_(CANCELLABLE),
                )
                .values(status="cancelling", cancelling_at=now)
            )
            changed = bool(flipped.rowcount)  # type: ignore[attr-defined]  # a CursorResult's
            lines = 0
            if changed:
                dropped = await session.execute(
                    update(BatchLineRow)
                    .where(BatchLineRow.batch_id == batch_id, BatchLineRow.status == "pending")
                    .values(status="cancelled", finished_at=now, lease_until=None)
                )
                lines = int(dropped.rowcount)  # type: ignore[attr-defined]
            row = await session.scalar(
                select(BatchRow).where(BatchRow.owner == owner, BatchRow.id == batch_id)
            )
        if row is None:
            return None
        if changed:
            self._tell()
        return Cancelled(BatchRecord.of(row), changed, lines)

    # --- the drainer's side: across owners

    async def by_id(self, batch_id: str) -> BatchRecord | None:
        async with self._database.session("batches") as session:
            row = await session.scalar(select(BatchRow).where(BatchRow.id == batch_id))
        return None if row is None else BatchRecord.of(row)

    async def ready(self, *, now: float) -> Sequence[str]:
        """Batches whose lines have all finished (or whose finalizer died): to finalize."""
        done = and_(BatchRow.status.in_(("in_progress", "cancelling")), ~_unfinished_lines())
        statement = (
            select(BatchRow.id)
            .where(or_(done, BatchRow.status == "finalizing"), _lease_free(now))
            .order_by(BatchRow.seq)
        )
        async with self._database.session("batches") as session:
            return list((await session.scalars(statement)).all())

    async def claim_finalization(
        self, batch_id: str, replica: str, *, now: float, lease: float
    ) -> BatchStatus | None:
        """Take the batch's last step, under a lease; its final status (`completed`,
        `expired` or `cancelled`), or None when it is not ready or another replica has it."""
        from_progress = BatchRow.status == "in_progress"
        async with self._database.session("batches") as session:
            claimed = await session.execute(
                update(BatchRow)
                .where(
                    BatchRow.id == batch_id,
                    _lease_free(now),
                    or_(
                        and_(
                            BatchRow.status.in_(("in_progress", "cancelling")),
                            ~_unfinished_lines(),
                        ),
                        BatchRow.status == "finalizing",
                    ),
                )
                .values(
                    claimed_by=replica,
                    lease_until=now + lease,
                    status=case((from_progress, "finalizing"), else_=BatchRow.status),
                    finalizing_at=case((from_progress, int(now)), else_=BatchRow.finalizing_at),
                )
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]  # a CursorResult's
                return None
            status = await session.scalar(select(BatchRow.status).where(BatchRow.id == batch_id))
            if status == "cancelling":
                return "cancelled"
            expired = await session.scalar(
                select(func.count())
                .select_from(BatchLineRow)
                .where(BatchLineRow.batch_id == batch_id, BatchLineRow.status == "expired")
            )
        return "expired" if expired else "completed"

    async def renew_finalization(self, batch_id: str, replica: str, *, until: float) -> bool:
        async with self._database.session("batches") as session:
            renewed = await session.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.claimed_by == replica)
                .values(lease_until=until)
            )
        return bool(renewed.rowcount)  # type: ignore[attr-defined]

    async def results(
        self, batch_id: str, statuses: Sequence[LineStatus], *, after_line: int, limit: int
    ) -> Sequence[LineRecord]:
        """Finished lines of these statuses, in input order, `limit` after `after_line`."""
        statement = (
            select(
                BatchLineRow.line, BatchLineRow.custom_id, BatchLineRow.status, BatchLineRow.result
            )
            .where(
                BatchLineRow.batch_id == batch_id,
                BatchLineRow.status.in_(statuses),
                BatchLineRow.line > after_line,
            )
            .order_by(BatchLineRow.line)
            .limit(limit)
        )
        async with self._database.session("batch results") as session:
            rows = (await session.execute(statement)).all()
        return [LineRecord(row[0], row[1], row[2], row[3]) for row in rows]

    async def complete(
        self,
        batch: BatchRecord,
        replica: str,
        final: BatchStatus,
        files: BatchFiles,
        *,
        now: float,
    ) -> bool:
        """Record the output files and the final status in one transaction; False (nothing
        written) when this replica no longer holds the batch's last step."""
        stamp = {"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}
        values: dict[str, Any] = {
            "status": final,
            stamp[final]: int(now),
            "output_file_id": files.output.file_id if files.output else None,
            "error_file_id": files.errors.file_id if files.errors else None,
            "claimed_by": None,
            "lease_until": None,
        }
        async with self._database.session("batches") as session:
            done = await session.execute(
                update(BatchRow)
                .where(
                    BatchRow.id == batch.id,
                    BatchRow.claimed_by == replica,
                    BatchRow.status.in_(("finalizing", "cancelling")),
                )
                .values(**values)
            )
            if not done.rowcount:  # type: ignore[attr-defined]  # a CursorResult's
                return False
            for content, kind in ((files.output, "output"), (files.errors, "error")):
                if content is not None:
                    session.add(
                        self._files.row(
                            batch.owner,
                            content,
                            filename=f"{batch.id}_{kind}.jsonl",
                            purpose="batch_output",
                        )
                    )
        return True

    async def counts(self) -> dict[str, int]:
        """Batches by status, across owners (the metrics' gauge)."""
        statement = select(BatchRow.status, func.count()).group_by(BatchRow.status)
        async with self._database.session("batches") as session:
            rows = (await session.execute(statement)).all()
        return {status: int(count) for status, count in rows}

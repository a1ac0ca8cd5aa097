"""The responses repository: stored responses (`previous_response_id`, GET, DELETE), the life of
a background run (queued -> in_progress -> a final status, cancel, heartbeats, the sweep of runs
whose replica died), and the events a background stream keeps.

Every call a client's request makes takes the owner and sees only that owner's responses (None
or False for another's). The calls of a run (`mark_in_progress`, `finish`, `heartbeat`) take the
replica instead: they change a response only while it is active and still the replica's, so a
run that was cancelled or declared dead meanwhile cannot overwrite that.

Bounds: at most `entries` responses (the oldest final ones go first, checked at each insert), none
older than `ttl_seconds` (invisible at once, deleted by `prune`). Events go with their response.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.store.database import Database
from service.store.operations import store_operations
from service.store.session_tables import ACTIVE_STATUSES, ResponseEventRow, ResponseRow

EVENTS_PAGE = 1000  # events read at once when a stream is replayed


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    owner: str
    status: str
    error: dict[str, Any] | None
    body: dict[str, Any]  # the Response object as last written (status and error overlaid)
    messages: list[dict[str, Any]]
    input_items: list[dict[str, Any]]  # its own input, with ids, oldest first
    background: bool
    stream: bool
    conversation_id: str | None
    replica: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @classmethod
    def of(cls, row: ResponseRow) -> StoredResponse:
        return cls(
            id=row.id,
            owner=row.owner,
            status=row.status,
            error=row.error,
            body={**row.body, "status": row.status, "error": row.error},
            messages=row.messages,
            input_items=row.input_items,
            background=row.background,
            stream=row.stream,
            conversation_id=row.conversation_id,
            replica=row.replica,
        )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    sequence_number: int
    type: str
    data: str  # the event's JSON, as sent


@store_operations
class Responses:
    def __init__(
        self,
        database: Database,
        *,
        entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self.entries = entries
        self._ttl = ttl_seconds
        self._clock = clock

    async def put(
        self,
        owner: str,
        body: dict[str, Any],
        messages: list[dict[str, Any]],
        *,
        input_items: Sequence[dict[str, Any]] = (),
        conversation_id: str | None = None,
    ) -> None:
        """Keep a finished response (one that ran in its request); with `entries` 0, nothing is
        kept."""
        if self.entries < 1:
            return
        await self._insert(
            ResponseRow(
                id=body["id"],
                owner=owner,
                status=body["status"],
                error=body.get("error"),
                body=body,
                messages=messages,
                input_items=list(input_items),
                conversation_id=conversation_id,
                created_at=self._clock(),
            )
        )

    async def start(
        self,
        owner: str,
        body: dict[str, Any],
        messages: list[dict[str, Any]],
        *,
        input_items: Sequence[dict[str, Any]] = (),
        replica: str,
        stream: bool,
        conversation_id: str | None = None,
    ) -> None:
        """Record a background run, queued on `replica` (its heartbeat starts now)."""
        now = self._clock()
        await self._insert(
            ResponseRow(
                id=body["id"],
                owner=owner,
                status="queued",
                body=body,
                messages=messages,
                input_items=list(input_items),
                background=True,
                stream=stream,
                conversation_id=conversation_id,
                replica=replica,
                heartbeat_at=now,
                created_at=now,
            )
        )

    async def _insert(self, row: ResponseRow) -> None:
        async with self._database.session("responses") as session:
            session.add(row)
            await session.flush()
            await self._trim(session)

    async def _trim(self, session: AsyncSession) -> None:
        """Delete the oldest final responses beyond `entries`."""
        if self.entries < 1:
            return
        newest_kept = (
            select(ResponseRow.seq)
            .order_by(ResponseRow.seq.desc())
            .offset(self.entries - 1)
            .limit(1)
            .scalar_subquery()
        )
        await session.execute(
            delete(ResponseRow).where(
                ResponseRow.seq < newest_kept, ResponseRow.status.not_in(ACTIVE_STATUSES)
            )
        )

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        async with self._database.session("responses") as session:
            row = await session.scalar(
                select(ResponseRow).where(
                    ResponseRow.owner == owner,
                    ResponseRow.id == response_id,
                    ResponseRow.created_at > self._clock() - self._ttl,
                )
            )
        return None if row is None else StoredResponse.of(row)

    async def delete(self, owner: str, response_id: str) -> bool:
        async with self._database.session("responses") as session:
            deleted = await session.execute(
                delete(ResponseRow).where(ResponseRow.owner == owner, ResponseRow.id == response_id)
            )
        return bool(deleted.rowcount)  # type: ignore[attr-defined]  # a CursorResult's

    async def cancel(self, owner: str, response_id: str) -> bool:
        """Mark the owner's active background response cancelled; False when it is not (any
        more) active. Its replica sees the status at its next heartbeat and stops the run."""
        return await self._set(
            ResponseRow.owner == owner,
            ResponseRow.id == response_id,
            ResponseRow.background.is_(True),
            values={"status": "cancelled"},
        )

    async def mark_in_progress(self, response_id: str, replica: str) -> bool:
        return await self._set(
            ResponseRow.id == response_id,
            ResponseRow.replica == replica,
            ResponseRow.status == "queued",
            values={"status": "in_progress"},
        )

    async def finish(
        self,
        response_id: str,
        replica: str,
        *,
        body: dict[str, Any],
        messages: list[dict[str, Any]] | None = None,
    ) -> bool:
        """The run's end (the body's status and error); False when the response was no longer
        this replica's active run (cancelled, or declared dead), and nothing is changed."""
        values: dict[str, Any] = {
            "status": body["status"],
            "error": body.get("error"),
            "body": body,
        }
        if messages is not None:
            values["messages"] = messages
        return await self._set(
            ResponseRow.id == response_id, ResponseRow.replica == replica, values=values
        )

    async def _set(self, *where: Any, values: dict[str, Any]) -> bool:
        """Update a response that is still active; whether one was."""
        async with self._database.session("responses") as session:
            updated = await session.execute(
                update(ResponseRow)
                .where(*where, ResponseRow.status.in_(ACTIVE_STATUSES))
                .values(**values)
            )
        return bool(updated.rowcount)  # type: ignore[attr-defined]

    async def heartbeat(self, replica: str, response_ids: Sequence[str], *, now: float) -> set[str]:
        """Record that `replica` still runs these responses (at `now`); the ones still active
        (the rest were cancelled, deleted or declared dead: their runs should stop)."""
        if not response_ids:
            return set()
        mine = (
            ResponseRow.id.in_(response_ids),
            ResponseRow.replica == replica,
            ResponseRow.status.in_(ACTIVE_STATUSES),
        )
        async with self._database.session("responses") as session:
            await session.execute(update(ResponseRow).where(*mine).values(heartbeat_at=now))
            active = (await session.scalars(select(ResponseRow.id).where(*mine))).all()
        return set(active)

    async def fail_stale(self, cutoff: float, error: dict[str, Any]) -> list[str]:
        """Mark failed every active run whose replica has not heartbeated since `cutoff` (Unix
        seconds); their ids. Reads first, so that an idle store sees no write."""
        stale = (ResponseRow.status.in_(ACTIVE_STATUSES), ResponseRow.heartbeat_at < cutoff)
        async with self._database.session("responses") as session:
            ids = list((await session.scalars(select(ResponseRow.id).where(*stale))).all())
            if ids:
                await session.execute(
                    update(ResponseRow)
                    .where(ResponseRow.id.in_(ids), *stale)
                    .values(status="failed", error=error)
                )
        return ids

    async def prune(self) -> None:
        """Delete the final responses (and their events) older than the TTL."""
        async with self._database.session("responses") as session:
            await session.execute(
                delete(ResponseRow).where(
                    ResponseRow.created_at <= self._clock() - self._ttl,
                    ResponseRow.status.not_in(ACTIVE_STATUSES),
                )
            )

    async def append_events(self, response_id: str, events: Sequence[StoredEvent]) -> None:
        if not events:
            return
        async with self._database.session("response events") as session:
            session.add_all(
                ResponseEventRow(
                    response_id=response_id,
                    sequence_number=event.sequence_number,
                    type=event.type,
                    data=event.data,
                )
                for event in events
            )

    async def events_after(
        self, response_id: str, after: int, *, limit: int = EVENTS_PAGE
    ) -> list[StoredEvent]:
        """The stored events with a sequence number above `after`, in order."""
        async with self._database.session("response events") as session:
            rows = await session.execute(
                select(
                    ResponseEventRow.sequence_number, ResponseEventRow.type, ResponseEventRow.data
                )
                .where(
                    ResponseEventRow.response_id == response_id,
                    ResponseEventRow.sequence_number > after,
                )
                .order_by(ResponseEventRow.sequence_number)
                .limit(limit)
            )
            return [StoredEvent(seq, kind, data) for seq, kind, data in rows.all()]

"""The conversations repository: conversations, their metadata and their items, in order.

Every call takes the owner and sees only that owner's conversations and items: another owner's is
None, absent from lists, not changed (404 upstream). Items are kept in the shape the API answers
them (dicts); what they mean is the service's business.

Bounds: at most `entries` conversations (those unused longest go first, checked at each
creation); one unused for `ttl_seconds` is invisible at once and deleted by `prune`. A
conversation is used when it is created, updated, or items are added.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.store.database import Database
from service.store.operations import store_operations
from service.store.paging import Order, Page, keyset, page
from service.store.session_tables import ConversationItemRow, ConversationRow


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: str
    owner: str
    metadata: dict[str, str]
    created_at: int  # Unix seconds

    @classmethod
    def of(cls, row: ConversationRow) -> ConversationRecord:
        return cls(row.id, row.owner, row.conversation_metadata, row.created_at)


def _item_rows(owner: str, conversation_id: str, items: list[dict[str, Any]]) -> list[Any]:
    return [
        ConversationItemRow(id=item["id"], owner=owner, conversation_id=conversation_id, item=item)
        for item in items
    ]


@store_operations
class Conversations:
    def __init__(
        self,
        database: Database,
        *,
        entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database = database
        self._entries = entries
        self._ttl = ttl_seconds
        self._clock = clock

    def _live(self, owner: str, conversation_id: str) -> tuple[Any, ...]:
        return (
            ConversationRow.owner == owner,
            ConversationRow.id == conversation_id,
            ConversationRow.used_at > self._clock() - self._ttl,
        )

    async def create(
        self,
        owner: str,
        conversation_id: str,
        *,
        metadata: dict[str, str],
        items: list[dict[str, Any]],
    ) -> ConversationRecord:
        now = self._clock()
        row = ConversationRow(
            id=conversation_id,
            owner=owner,
            conversation_metadata=metadata,
            created_at=int(now),
            used_at=now,
        )
        async with self._database.session("conversations") as session:
            session.add(row)
            await session.flush()  # the conversation before its items (foreign key)
            session.add_all(_item_rows(owner, conversation_id, items))
            await self._trim(session)
        return ConversationRecord.of(row)

    async def _trim(self, session: AsyncSession) -> None:
        """Delete the conversations unused longest beyond `entries`."""
        last_kept = (
            select(ConversationRow.used_at)
            .order_by(ConversationRow.used_at.desc())
            .offset(self._entries - 1)
            .limit(1)
            .scalar_subquery()
        )
        await session.execute(delete(ConversationRow).where(ConversationRow.used_at < last_kept))

    async def get(self, owner: str, conversation_id: str) -> ConversationRecord | None:
        async with self._database.session("conversations") as session:
            row = await session.scalar(
                select(ConversationRow).where(*self._live(owner, conversation_id))
            )
        return None if row is None else ConversationRecord.of(row)

    async def update(
        self, owner: str, conversation_id: str, metadata: dict[str, str]
    ) -> ConversationRecord | None:
        async with self._database.session("conversations") as session:
            changed = await session.execute(
                update(ConversationRow)
                .where(*self._live(owner, conversation_id))
                .values(conversation_metadata=metadata, used_at=self._clock())
            )
        if not changed.rowcount:  # type: ignore[attr-defined]  # a CursorResult's
            return None
        return await self.get(owner, conversation_id)

    async def delete(self, owner: str, conversation_id: str) -> bool:
        async with self._database.session("conversations") as session:
            deleted = await session.execute(
                delete(ConversationRow).where(*self._live(owner, conversation_id))
            )
        return bool(deleted.rowcount)  # type: ignore[attr-defined]

    async def append(self, owner: str, conversation_id: str, items: list[dict[str, Any]]) -> bool:
        """Add items at the end; False when the owner has no such conversation (any more)."""
        async with self._database.session("conversations") as session:
            used = await session.execute(
                update(ConversationRow)
                .where(*self._live(owner, conversation_id))
                .values(used_at=self._clock())
            )
            if not used.rowcount:  # type: ignore[attr-defined]
                return False
            session.add_all(_item_rows(owner, conversation_id, items))
        return True

    def _items_of(self, owner: str, conversation_id: str) -> tuple[Any, ...]:
        return (
            ConversationItemRow.owner == owner,
            ConversationItemRow.conversation_id == conversation_id,
        )

    async def items(
        self,
        owner: str,
        conversation_id: str,
        *,
        after: str | None = None,
        limit: int,
        order: Order,
    ) -> Page[dict[str, Any]]:
        """A page of the conversation's items; `after` is an item id (unknown: an empty page)."""
        statement = select(ConversationItemRow.item).where(*self._items_of(owner, conversation_id))
        cursor = None
        if after is not None:
            cursor = select(ConversationItemRow.seq).where(
                *self._items_of(owner, conversation_id), ConversationItemRow.id == after
            )
        statement = keyset(
            statement, ConversationItemRow.seq, after_seq=cursor, order=order, limit=limit
        )
        async with self._database.session("conversations") as session:
            rows = (await session.scalars(statement)).all()
        return page(list(rows), limit)

    async def all_items(self, owner: str, conversation_id: str) -> list[dict[str, Any]]:
        """Every item of the conversation, oldest first (what a response's prompt starts with)."""
        async with self._database.session("conversations") as session:
            rows = await session.scalars(
                select(ConversationItemRow.item)
                .where(*self._items_of(owner, conversation_id))
                .order_by(ConversationItemRow.seq)
            )
            return list(rows.all())

    async def item(self, owner: str, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        async with self._database.session("conversations") as session:
            found: dict[str, Any] | None = await session.scalar(
                select(ConversationItemRow.item).where(
                    *self._items_of(owner, conversation_id), ConversationItemRow.id == item_id
                )
            )
        return found

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        async with self._database.session("conversations") as session:
            deleted = await session.execute(
                delete(ConversationItemRow).where(
                    *self._items_of(owner, conversation_id), ConversationItemRow.id == item_id
                )
            )
        return bool(deleted.rowcount)  # type: ignore[attr-defined]

    async def prune(self) -> None:
        """Delete the conversations (and their items) unused for longer than the TTL."""
        async with self._database.session("conversations") as session:
            await session.execute(
                delete(ConversationRow).where(ConversationRow.used_at <= self._clock() - self._ttl)
            )

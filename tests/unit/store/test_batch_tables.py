"""The batch tables' own rules, which the batch logic relies on: one line per `custom_id` in a
batch (so each gets exactly one stored result), a batch's lines go with it, JSON bodies as
they were."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service.store import ANONYMOUS_OWNER, Store
from service.store.tables import BatchLineRow, BatchRow


def batch(batch_id: str, **fields: Any) -> BatchRow:
    return BatchRow(
        id=batch_id,
        owner=ANONYMOUS_OWNER,
        endpoint="/v1/chat/completions",
        input_file_id="file-0",
        completion_window="24h",
        status="validating",
        created_at=1,
        expires_at=86401,
        **fields,
    )


def line(batch_id: str, number: int, custom_id: str) -> BatchLineRow:
    body = {"model": "m", "messages": [{"role": "user", "content": "héllo"}]}
    return BatchLineRow(
        batch_id=batch_id, line=number, custom_id=custom_id, body=body, status="pending"
    )


async def test_a_custom_id_is_one_line_of_its_batch(store: Store) -> None:
    async with store.database.session() as session:
        session.add_all([batch("batch_a"), batch("batch_b")])
    async with store.database.session() as session:
        session.add_all([line("batch_a", 1, "x"), line("batch_b", 1, "x")])  # another batch: ok
    with pytest.raises(IntegrityError):
        async with store.database.session() as session:
            session.add(line("batch_a", 2, "x"))


async def test_a_batch_s_lines_go_with_it_and_keep_their_json(store: Store) -> None:
    async with store.database.session() as session:
        session.add(batch("batch_a", batch_metadata={"job": "nightly"}))
    async with store.database.session() as session:
        session.add_all([line("batch_a", 1, "x"), line("batch_a", 2, "y")])
    async with store.database.session() as session:
        stored = await session.scalar(select(BatchLineRow).where(BatchLineRow.line == 1))
        kept = await session.scalar(select(BatchRow.batch_metadata))
    assert stored is not None and stored.body["messages"][0]["content"] == "héllo"
    assert kept == {"job": "nightly"}

    async with store.database.session() as session:
        await session.delete(await session.scalar(select(BatchRow)))
    async with store.database.session() as session:
        left = await session.scalar(select(func.count()).select_from(BatchLineRow))
    assert left == 0

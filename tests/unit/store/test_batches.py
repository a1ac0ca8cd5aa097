"""The batches and their lines in the store, on SQLite and PostgreSQL: a batch is whole or
absent, lines are claimed under leases by one replica at a time and taken over when a lease runs
out, every line keeps exactly one result, and a batch's last step is one replica's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from service.errors import StoreUnavailableError
from service.store import ANONYMOUS_OWNER, Store
from service.store.batch_lines import LineKey, LineResult
from service.store.batches import BatchFiles, NewBatch, NewLine
from service.store.tables import BatchLineRow, BatchRow

NOW = 1_000_000.0
LEASE = 30.0
OK = LineResult("succeeded", 200, {"response": {"status_code": 200}, "error": None}, 3, 4)


def new_batch(**fields: Any) -> NewBatch:
    base: dict[str, Any] = {
        "endpoint": "/v1/chat/completions",
        "input_file_id": "file-0",
        "completion_window": "24h",
        "window_seconds": 86400,
        "metadata": None,
        "caller": {"key_id": None},
    }
    return NewBatch(**{**base, **fields})


async def groups(count: int, *, fail_after: int | None = None) -> AsyncIterator[Sequence[NewLine]]:
    for number in range(1, count + 1):
        if fail_after is not None and number > fail_after:
            raise OSError("the input could not be read")
        yield [NewLine(number, f"r{number}", {"model": "m", "n": number})]


async def make(store: Store, count: int) -> str:
    store.batches.clock = lambda: NOW
    return (await store.batches.create(ANONYMOUS_OWNER, new_batch(), groups(count))).id


async def counts(store: Store) -> tuple[int, int]:
    async with store.database.session() as session:
        batches = await session.scalar(select(func.count()).select_from(BatchRow))
        lines = await session.scalar(select(func.count()).select_from(BatchLineRow))
    return int(batches or 0), int(lines or 0)


async def test_a_batch_is_made_with_all_its_lines_or_not_at_all(store: Store) -> None:
    made = await store.batches.create(ANONYMOUS_OWNER, new_batch(), groups(3))
    assert made.status == "in_progress" and made.total == 3
    assert made.in_progress_at == made.created_at and made.expires_at == made.created_at + 86400
    with pytest.raises(StoreUnavailableError):  # the input could not be read: 503
        await store.batches.create(ANONYMOUS_OWNER, new_batch(), groups(5, fail_after=2))
    assert await counts(store) == (1, 3)  # the failed one left nothing


async def test_replicas_claiming_at_once_take_different_lines(store: Store) -> None:
    batch_id = await make(store, 20)
    claims = await asyncio.gather(
        *(store.batch_lines.claim(f"replica-{i}", 4, now=NOW, lease=LEASE) for i in range(4))
    )
    taken = [line.key.line for claim in claims for line in claim]
    assert sorted(taken) == list(range(1, 17))  # 4 x 4, none twice
    assert all(line.attempts == 1 for claim in claims for line in claim)
    rest = await store.batch_lines.claim("replica-9", 10, now=NOW, lease=LEASE)
    assert [line.key.line for line in rest] == [17, 18, 19, 20]
    assert await store.batch_lines.claim("replica-9", 10, now=NOW, lease=LEASE) == []
    assert {line.key.batch_id for line in rest} == {batch_id}


async def test_a_line_whose_lease_ran_out_is_claimed_again(store: Store) -> None:
    await make(store, 2)
    first = await store.batch_lines.claim("dead", 1, now=NOW, lease=LEASE)
    mine = await store.batch_lines.claim("alive", 1, now=NOW, lease=LEASE)
    renewed = await store.batch_lines.renew(
        "alive", [mine[0].key, first[0].key], until=NOW + 2 * LEASE
    )
    assert renewed == {mine[0].key}  # only its own
    again = await store.batch_lines.claim("alive", 5, now=NOW + LEASE, lease=LEASE)
    assert [(line.key, line.attempts) for line in again] == [(first[0].key, 2)]


async def test_each_line_keeps_exactly_one_result(store: Store) -> None:
    batch_id = await make(store, 1)
    [line] = await store.batch_lines.claim("slow", 1, now=NOW, lease=LEASE)
    [again] = await store.batch_lines.claim("other", 1, now=NOW + LEASE, lease=LEASE)
    assert again.key == line.key  # the first replica paused past its lease
    late = LineResult("failed", 500, {"response": {"status_code": 500}, "error": None})
    first = await store.batch_lines.finish(line.key, OK, now=NOW + LEASE)
    assert first.stored and first.batch_done
    second = await store.batch_lines.finish(again.key, late, now=NOW + LEASE)
    assert not second.stored
    batch = await store.batches.by_id(batch_id)
    assert batch is not None
    assert (batch.completed, batch.failed, batch.input_tokens, batch.output_tokens) == (1, 0, 3, 4)
    results = await store.batches.results(batch_id, ("succeeded", "failed"), after_line=0, limit=9)
    assert [(r.custom_id, r.status) for r in results] == [("r1", "succeeded")]


async def test_a_line_handed_back_waits_for_its_time(store: Store) -> None:
    await make(store, 1)
    [line] = await store.batch_lines.claim("a", 1, now=NOW, lease=LEASE)
    await store.batch_lines.release(line.key, "a", not_before=NOW + 10, ran=False)
    assert await store.batch_lines.claim("b", 1, now=NOW + 5, lease=LEASE) == []
    [again] = await store.batch_lines.claim("b", 1, now=NOW + 10, lease=LEASE)
    assert again.attempts == 1  # a refusal before it ran does not count


async def test_cancel_drops_the_lines_not_started(store: Store) -> None:
    batch_id = await make(store, 4)
    [running] = await store.batch_lines.claim("a", 1, now=NOW, lease=LEASE)
    cancelled = await store.batches.cancel(ANONYMOUS_OWNER, batch_id)
    assert cancelled is not None and cancelled.changed and cancelled.lines == 3
    assert cancelled.record.status == "cancelling" and cancelled.record.cancelling_at == NOW
    assert await store.batch_lines.claim("b", 9, now=NOW, lease=LEASE) == []
    assert await store.batches.ready(now=NOW) == []  # a line is still running
    assert (await store.batch_lines.finish(running.key, OK, now=NOW)).stored
    assert await store.batches.ready(now=NOW) == [batch_id]
    assert await store.batches.claim_finalization(batch_id, "a", now=NOW, lease=LEASE) == (
        "cancelled"
    )
    again = await store.batches.cancel(ANONYMOUS_OWNER, batch_id)
    assert again is not None and not again.changed
    assert await store.batches.cancel("someone-else", batch_id) is None


async def test_expired_lines_make_an_expired_batch(store: Store) -> None:
    batch_id = await make(store, 3)
    [done] = await store.batch_lines.claim("a", 1, now=NOW, lease=LEASE)
    await store.batch_lines.finish(done.key, OK, now=NOW)
    assert await store.batch_lines.expire(now=NOW + 86399) == 0
    assert await store.batch_lines.claim("a", 9, now=NOW + 86400, lease=LEASE) == []
    assert await store.batch_lines.expire(now=NOW + 86400) == 2
    assert await store.batches.ready(now=NOW + 86400) == [batch_id]
    final = await store.batches.claim_finalization(batch_id, "a", now=NOW + 86400, lease=LEASE)
    assert final == "expired"


async def test_the_last_step_is_one_replica_s_and_another_s_after_its_lease(store: Store) -> None:
    batch_id = await make(store, 1)
    [line] = await store.batch_lines.claim("a", 1, now=NOW, lease=LEASE)
    await store.batch_lines.finish(line.key, OK, now=NOW)
    assert await store.batches.claim_finalization(batch_id, "a", now=NOW, lease=LEASE)
    assert await store.batches.claim_finalization(batch_id, "b", now=NOW + 1, lease=LEASE) is None
    assert await store.batches.ready(now=NOW + 1) == []
    later = NOW + LEASE  # "a" died while writing the files
    assert await store.batches.ready(now=later) == [batch_id]
    assert await store.batches.claim_finalization(batch_id, "b", now=later, lease=LEASE)
    batch = await store.batches.by_id(batch_id)
    assert batch is not None and batch.status == "finalizing"
    none = BatchFiles(None, None)
    assert not await store.batches.complete(batch, "a", "completed", none, now=later)
    assert await store.batches.complete(batch, "b", "completed", none, now=later)
    done = await store.batches.by_id(batch_id)
    assert done is not None and done.status == "completed" and done.completed_at == int(later)


async def test_another_owner_sees_no_batch(store: Store) -> None:
    batch_id = await make(store, 1)
    assert await store.batches.get("key-b", batch_id) is None
    assert (await store.batches.list("key-b")).items == []
    assert [b.id for b in (await store.batches.list(ANONYMOUS_OWNER)).items] == [batch_id]


async def test_lines_are_unique_by_key(store: Store) -> None:
    await make(store, 2)
    claimed = await store.batch_lines.claim("a", 2, now=NOW, lease=LEASE)
    assert len({line.key for line in claimed}) == 2
    assert all(isinstance(line.key, LineKey) for line in claimed)

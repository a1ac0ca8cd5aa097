"""The tenants' repositories on SQLite and PostgreSQL: runtime keys, usage by minute summed into
buckets, and the budgets' ledger that every replica adds to."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from service.store import Store
from service.store.api_keys import DuplicateKeyError, KeyRecord
from service.store.usage import UsageQuery

HOUR = 3600
T0 = 1_800_000_000 - 1_800_000_000 % 86_400  # a UTC midnight


def record(name: str, secret: str, **fields: object) -> KeyRecord:
    digest = hashlib.sha256(secret.encode()).hexdigest()
    base = KeyRecord(
        id=digest[:12],
        digest=digest,
        name=name,
        redacted_value="sk-gw-...abcd",
        owner="admin-id",
        admin=False,
        priority=0,
        weight=1.0,
        requests_per_minute=None,
        tokens_per_minute=None,
        tokens_per_day=None,
        tokens_per_month=None,
        created_at=T0,
        expires_at=None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


async def test_runtime_keys_are_made_changed_and_revoked(store: Store) -> None:
    keys = store.runtime_keys
    a = await keys.create(record("team-a", "sk-a", tokens_per_day=100))
    b = await keys.create(record("team-b", "sk-b", weight=2.0))
    assert [k.name for k in await keys.active()] == ["team-a", "team-b"]
    assert await keys.get(a.id) == a
    changed = await keys.change(a.id, {"tokens_per_day": None, "priority": -10})
    assert changed is not None and (changed.tokens_per_day, changed.priority) == (None, -10)
    assert await keys.revoke(b.id, at=T0 + 1)
    assert not await keys.revoke(b.id, at=T0 + 2)  # already revoked
    assert await keys.get(b.id) is None
    assert await keys.change(b.id, {"weight": 3.0}) is None
    assert [k.name for k in await keys.active()] == ["team-a"]
    assert await keys.names() == {a.id: "team-a", b.id: "team-b"}  # revoked ones still named
    with pytest.raises(ValueError, match="not changeable: name"):
        await keys.change(a.id, {"name": "other"})


async def test_a_live_name_is_taken_but_a_revoked_ones_name_is_free(store: Store) -> None:
    keys = store.runtime_keys
    first = await keys.create(record("team", "sk-1"))
    with pytest.raises(DuplicateKeyError):
        await keys.create(record("team", "sk-2"))
    with pytest.raises(DuplicateKeyError):  # the same key twice
        await keys.create(record("other", "sk-1"))
    await keys.revoke(first.id, at=T0)
    again = await keys.create(record("team", "sk-2"))
    assert [k.id for k in await keys.active()] == [again.id]


async def test_usage_from_several_writers_adds_up(store: Store) -> None:
    usage = store.usage
    minute = T0 + 5 * 60
    await usage.add(
        {(minute, "completions", "k1", "m", False): [10, 5, 1]}, {("k1", "day", T0): 15}
    )
    await usage.add(  # another replica, the same minute and key
        {
            (minute, "completions", "k1", "m", False): [20, 7, 2],
            (minute, "completions", "k2", "m", True): [1, 1, 1],
            (minute, "embeddings", "k1", "e", False): [8, 0, 1],
        },
        {("k1", "day", T0): 27, ("k1", "month", T0): 42},
    )
    sums = await usage.buckets(
        UsageQuery(
            surface="completions", start=T0, end=T0 + HOUR, width=HOUR, group_by=["api_key_id"]
        )
    )
    assert [(s.group, s.input_tokens, s.output_tokens, s.requests) for s in sums] == [
        ({"api_key_id": "k1"}, 30, 12, 3),
        ({"api_key_id": "k2"}, 1, 1, 1),
    ]
    totals = await usage.window_totals([("day", T0), ("month", T0)])
    assert totals == {("k1", "day", T0): 42, ("k1", "month", T0): 42}
    assert await usage.window_totals([("day", T0 + 86_400)]) == {}


async def test_minutes_are_summed_into_buckets_from_the_start(store: Store) -> None:
    usage = store.usage
    rows = {
        (T0 + 0 * 60, "completions", "k1", "m1", False): [1, 1, 1],
        (T0 + 59 * 60, "completions", "k1", "m2", False): [2, 2, 1],
        (T0 + 60 * 60, "completions", "k2", "m1", True): [4, 4, 1],
        (T0 + 3 * HOUR, "completions", "k1", "m1", False): [8, 8, 1],
        (T0 + 3 * HOUR, "embeddings", "k1", "e", False): [100, 0, 1],
    }
    await usage.add(rows, {})

    async def buckets(**query: object) -> list[tuple[int, dict[str, object], int]]:
        found = await usage.buckets(
            UsageQuery(surface="completions", start=T0, end=T0 + 4 * HOUR, width=HOUR, **query)  # type: ignore[arg-type]
        )
        return [(s.bucket, s.group, s.input_tokens) for s in found]

    assert await buckets() == [(0, {}, 3), (1, {}, 4), (3, {}, 8)]
    assert await buckets(group_by=["model"]) == [
        (0, {"model": "m1"}, 1),
        (0, {"model": "m2"}, 2),
        (1, {"model": "m1"}, 4),
        (3, {"model": "m1"}, 8),
    ]
    assert await buckets(group_by=["batch"], batch=True) == [(1, {"batch": True}, 4)]
    assert await buckets(key_ids=["k2"]) == [(1, {}, 4)]
    assert await buckets(models=["m2"]) == [(0, {}, 2)]
    day = await usage.buckets(
        UsageQuery(surface="embeddings", start=T0, end=T0 + 86_400, width=86_400)
    )
    assert [(s.bucket, s.input_tokens, s.output_tokens) for s in day] == [(0, 100, 0)]


async def test_pruning_forgets_old_minutes_and_windows(store: Store) -> None:
    usage = store.usage
    await usage.add(
        {
            (T0, "completions", "k", "m", False): [1, 1, 1],
            (T0 + HOUR, "completions", "k", "m", False): [2, 2, 1],
        },
        {("k", "day", T0): 2, ("k", "day", T0 + 86_400): 4},
    )
    await usage.prune(usage_before=T0 + 60, ledger_before=T0 + 1)
    left = await usage.buckets(
        UsageQuery(surface="completions", start=T0, end=T0 + 86_400, width=86_400)
    )
    assert [s.input_tokens for s in left] == [2]
    assert await usage.window_totals([("day", T0), ("day", T0 + 86_400)]) == {
        ("k", "day", T0 + 86_400): 4
    }

"""The responses and conversations repositories on SQLite and on a real PostgreSQL: ownership,
the bounds (count and age), a background run's life (conditional on still being active and the
replica's), heartbeats and the sweep of dead runs, stored events, conversations' items."""

from __future__ import annotations

from typing import Any

import pytest

from service.store import Store
from service.store.conversations import Conversations
from service.store.responses import Responses, StoredEvent


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def responses_of(store: Store, clock: Clock, *, entries: int = 100) -> Responses:
    return Responses(store.database, entries=entries, ttl_seconds=60, clock=clock)


def conversations_of(store: Store, clock: Clock, *, entries: int = 100) -> Conversations:
    return Conversations(store.database, entries=entries, ttl_seconds=60, clock=clock)


def body(response_id: str, status: str = "completed") -> dict[str, Any]:
    return {"id": response_id, "object": "response", "status": status, "output": []}


async def test_a_response_is_its_owners_only(store: Store, clock: Clock) -> None:
    responses = responses_of(store, clock)
    await responses.put("alice", body("resp_a"), [{"role": "user", "content": "hi"}])
    found = await responses.get("alice", "resp_a")
    assert found is not None and found.messages == [{"role": "user", "content": "hi"}]
    assert found.body["status"] == "completed" and not found.background
    assert await responses.get("bob", "resp_a") is None
    assert not await responses.delete("bob", "resp_a")
    assert await responses.delete("alice", "resp_a")
    assert await responses.get("alice", "resp_a") is None


async def test_responses_are_bounded_by_count_and_age(store: Store, clock: Clock) -> None:
    responses = responses_of(store, clock, entries=2)
    await responses.start("alice", body("resp_run", "queued"), [], replica="r", stream=False)
    for name in ("resp_1", "resp_2", "resp_3"):
        await responses.put("alice", body(name), [])
    assert await responses.get("alice", "resp_1") is None  # the oldest final one went first
    assert await responses.get("alice", "resp_run") is not None  # a run is never trimmed
    clock.now += 61
    assert await responses.get("alice", "resp_3") is None  # past the TTL: gone at once
    await responses.finish("resp_run", "r", body=body("resp_run"))
    await responses.prune()
    clock.now -= 61
    assert await responses.get("alice", "resp_3") is None  # and deleted by the prune


async def test_a_run_changes_only_while_active_and_its_replicas(store: Store, clock: Clock) -> None:
    responses = responses_of(store, clock)
    await responses.start("alice", body("resp_r", "queued"), [], replica="r1", stream=True)
    assert not await responses.mark_in_progress("resp_r", "r2")
    assert await responses.mark_in_progress("resp_r", "r1")
    assert not await responses.cancel("bob", "resp_r")
    assert await responses.cancel("alice", "resp_r")
    assert not await responses.finish("resp_r", "r1", body=body("resp_r"))  # cancelled meanwhile
    found = await responses.get("alice", "resp_r")
    assert found is not None and found.status == "cancelled" and found.body["status"] == "cancelled"
    assert not await responses.cancel("alice", "resp_r")  # only once


async def test_heartbeats_and_the_sweep_of_dead_runs(store: Store, clock: Clock) -> None:
    responses = responses_of(store, clock)
    for name, replica in (("resp_alive", "r1"), ("resp_dead", "r2"), ("resp_gone", "r1")):
        await responses.start("alice", body(name, "queued"), [], replica=replica, stream=False)
    await responses.cancel("alice", "resp_gone")
    clock.now += 30
    active = await responses.heartbeat("r1", ["resp_alive", "resp_gone"], now=clock.now)
    assert active == {"resp_alive"}  # the cancelled one's run should stop
    error = {"code": "server_error", "message": "dead"}
    assert await responses.fail_stale(clock.now - 10, error) == ["resp_dead"]
    dead = await responses.get("alice", "resp_dead")
    assert dead is not None and dead.status == "failed" and dead.error == error
    alive = await responses.get("alice", "resp_alive")
    assert alive is not None and alive.status == "queued"
    assert await responses.fail_stale(clock.now - 10, error) == []


async def test_events_are_kept_in_order_and_go_with_their_response(
    store: Store, clock: Clock
) -> None:
    responses = responses_of(store, clock)
    await responses.start("alice", body("resp_s", "queued"), [], replica="r", stream=True)
    events = [StoredEvent(i, f"kind.{i}", f'{{"n": {i}}}') for i in range(5)]
    await responses.append_events("resp_s", events[:2])
    await responses.append_events("resp_s", events[2:])
    assert await responses.events_after("resp_s", -1) == events
    assert await responses.events_after("resp_s", 2) == events[3:]
    assert await responses.events_after("resp_s", 1, limit=2) == events[2:4]
    await responses.delete("alice", "resp_s")
    assert await responses.events_after("resp_s", -1) == []


async def test_conversations_and_their_items(store: Store, clock: Clock) -> None:
    conversations = conversations_of(store, clock)
    items = [{"id": f"msg_{i}", "type": "message", "n": i} for i in range(5)]
    made = await conversations.create("alice", "conv_a", metadata={"k": "v"}, items=items[:3])
    assert made.metadata == {"k": "v"}
    assert await conversations.get("bob", "conv_a") is None
    assert await conversations.append("alice", "conv_a", items[3:])
    assert not await conversations.append("bob", "conv_a", items[3:])
    assert await conversations.all_items("alice", "conv_a") == items
    page = await conversations.items("alice", "conv_a", limit=2, order="desc")
    assert page.items == items[:2:-1][:2] and page.has_more
    after = await conversations.items("alice", "conv_a", after="msg_1", limit=10, order="asc")
    assert after.items == items[2:] and not after.has_more
    assert await conversations.item("alice", "conv_a", "msg_4") == items[4]
    assert await conversations.item("bob", "conv_a", "msg_4") is None
    assert not await conversations.delete_item("bob", "conv_a", "msg_4")
    assert await conversations.delete_item("alice", "conv_a", "msg_4")
    assert await conversations.update("alice", "conv_a", {"k": "w"}) is not None
    assert await conversations.update("bob", "conv_a", {}) is None
    assert await conversations.delete("alice", "conv_a")
    assert await conversations.all_items("alice", "conv_a") == []  # the items went with it


async def test_conversations_are_bounded_by_count_and_idle_age(store: Store, clock: Clock) -> None:
    conversations = conversations_of(store, clock, entries=2)
    for name in ("conv_1", "conv_2"):
        await conversations.create("alice", name, metadata={}, items=[])
        clock.now += 1
    await conversations.append("alice", "conv_1", [])  # used: conv_2 is now the idlest
    clock.now += 1
    await conversations.create("alice", "conv_3", metadata={}, items=[])
    assert await conversations.get("alice", "conv_2") is None
    assert await conversations.get("alice", "conv_1") is not None
    clock.now += 61
    assert await conversations.get("alice", "conv_3") is None
    await conversations.prune()
    clock.now -= 61
    assert await conversations.get("alice", "conv_3") is None

"""The share of the engine batch lines may use: half its running slots by default, never while
an interactive request waits for admission, never past the engine's free slots; a line waits
for room and then runs at the batch class under an admission permit."""

from __future__ import annotations

import asyncio

import pytest

from service.batches.accounts import BATCH_PRIORITY
from service.batches.room import Room
from service.http.keys import PRIORITIES
from service.runtime.admission import Admission
from tests.api.helpers import until

MAX_NUM_SEQS = 8


def room(admission: Admission, fraction: float = 0.5) -> Room:
    return Room(admission, lambda: MAX_NUM_SEQS, fraction)


def test_the_batch_class_is_below_every_key_class() -> None:
    assert all(priority < BATCH_PRIORITY for priority in PRIORITIES.values())  # lower runs first


@pytest.mark.parametrize(
    ("fraction", "slots"),
    [
        pytest.param(0.5, 4, id="half"),
        pytest.param(1.0, 8, id="all"),
        pytest.param(0.01, 1, id="one"),
    ],
)
def test_slots_are_the_fraction_of_max_num_seqs(fraction: float, slots: int) -> None:
    assert room(Admission(max_inflight=16, max_queued=64), fraction).slots == slots


async def test_lines_fit_only_behind_interactive_requests() -> None:
    admission = Admission(max_inflight=16, max_queued=64)
    share = room(admission)
    assert share.fits(4) and not share.fits(5)  # the share
    permits = [await admission.acquire(1) for _ in range(6)]  # interactive: 6 of 8 slots
    assert share.fits(2) and not share.fits(3)  # the engine's free slots
    permits += [await admission.acquire(1) for _ in range(10)]  # admission is full
    waiting = asyncio.create_task(admission.acquire(1))  # an interactive request queues
    await until(lambda: admission.queued == 1, "the request waits for admission")
    for permit in permits:
        permit.release()
    await waiting
    assert admission.queued == 0 and share.fits(4)
    admission.drain()
    assert not share.fits(1)


async def test_a_line_waits_for_room_then_runs_at_the_batch_class() -> None:
    admission = Admission(max_inflight=16, max_queued=64)
    share = room(admission)
    seen: list[int] = []

    async def work() -> str:
        seen.append(admission.in_flight)
        return "done"

    held = [await admission.acquire(1) for _ in range(MAX_NUM_SEQS)]  # the engine is full
    line = asyncio.create_task(share.run(3, work, seconds=30))
    await asyncio.sleep(0)
    assert not line.done() and seen == []
    for permit in held:
        permit.release()
    assert await line == "done"
    assert seen == [3]  # it ran under an admission permit for its cost
    assert admission.in_flight == 0 and share.running == 0


async def test_a_line_bigger_than_the_share_runs_alone_within_it() -> None:
    admission = Admission(max_inflight=16, max_queued=64)
    share = room(admission)
    assert share.cost_of(20) == share.slots == 4

    async def work() -> int:
        return admission.in_flight

    assert await share.run(20, work, seconds=30) == 4

"""The prior cache: LRU bound, one computation for concurrent misses, failures not cached.

Interleavings rely on asyncio running ready tasks in the order they were scheduled: a task created
before the test awaits an event runs its first step before the test resumes.
"""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from service.engine.fake import FakeEngine
from service.services.tasks.classify.calibration import PriorCache, Priors, cache_for


def priors(value: float) -> Priors:
    return Priors((value, -value), prompt_tokens=10, completion_tokens=2)


class Computation:
    """A prior computation that counts its calls and can be held open."""

    def __init__(self, value: float = 1.0, *, hold: bool = False) -> None:
        self.value = value
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.error: BaseException | None = None

    async def __call__(self) -> Priors:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return priors(self.value)


async def test_a_miss_computes_and_a_hit_does_not() -> None:
    cache, compute = PriorCache(), Computation()
    assert await cache.get("k", compute) == (priors(1.0), True)
    assert await cache.get("k", compute) == (priors(1.0), False)
    assert compute.calls == 1
    assert "k" in cache
    assert cache.peek("k") == priors(1.0)
    assert cache.peek("other") is None


async def test_least_recently_used_is_evicted() -> None:
    cache = PriorCache(maxsize=2)
    await cache.get("a", Computation(1.0))
    await cache.get("b", Computation(2.0))
    await cache.get("a", Computation(9.0))  # a hit: "a" becomes the most recent
    await cache.get("c", Computation(3.0))
    assert len(cache) == 2
    assert "b" not in cache
    assert cache.peek("a") == priors(1.0)
    assert cache.peek("c") == priors(3.0)


async def test_pinned_priors_are_never_evicted_nor_computed() -> None:
    cache = PriorCache(maxsize=1)
    cache.pin("preset", priors(5.0))
    await cache.get("a", Computation(1.0))
    await cache.get("b", Computation(2.0))  # evicts "a", not the pinned entry
    compute = Computation(9.0)
    assert await cache.get("preset", compute) == (priors(5.0), False)
    assert compute.calls == 0
    assert ("preset" in cache, "a" in cache, len(cache)) == (True, False, 2)


async def test_concurrent_misses_share_one_computation() -> None:
    cache, compute = PriorCache(), Computation(hold=True)
    first = asyncio.create_task(cache.get("k", compute))
    second = asyncio.create_task(cache.get("k", compute))
    await compute.started.wait()  # `first` computes; `second` has started waiting for it
    compute.release.set()
    assert await first == (priors(1.0), True)
    assert await second == (priors(1.0), False)  # it did not pay for them
    assert compute.calls == 1


async def test_a_failure_reaches_the_waiters_and_is_not_cached() -> None:
    cache, compute = PriorCache(), Computation(hold=True)
    compute.error = RuntimeError("engine down")
    first = asyncio.create_task(cache.get("k", compute))
    second = asyncio.create_task(cache.get("k", compute))
    await compute.started.wait()
    compute.release.set()
    for task in (first, second):
        with pytest.raises(RuntimeError, match="engine down"):
            await task
    assert compute.calls == 1
    assert "k" not in cache
    compute.error = None
    assert await cache.get("k", compute) == (priors(1.0), True)


async def test_a_waiter_computes_when_the_computing_request_is_cancelled() -> None:
    cache, compute = PriorCache(), Computation(hold=True)
    first = asyncio.create_task(cache.get("k", compute))
    second = asyncio.create_task(cache.get("k", compute))
    await compute.started.wait()
    first.cancel()
    compute.release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == (priors(1.0), True)
    assert compute.calls == 2


async def test_a_cancelled_waiter_leaves_the_computation_alone() -> None:
    cache, compute = PriorCache(), Computation(hold=True)
    first = asyncio.create_task(cache.get("k", compute))
    second = asyncio.create_task(cache.get("k", compute))
    await compute.started.wait()
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    compute.release.set()
    assert await first == (priors(1.0), True)
    assert compute.calls == 1


def test_each_engine_has_its_own_cache_which_goes_with_it() -> None:
    one, two = FakeEngine(), FakeEngine()
    assert cache_for(one) is cache_for(one)
    assert cache_for(one) is not cache_for(two)
    collected: list[bool] = []
    weakref.finalize(cache_for(two), collected.append, True)
    del two
    gc.collect()
    assert collected == [True]

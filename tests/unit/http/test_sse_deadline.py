"""A stream's deadline: one timer per stream, which interrupts only the wait for a payload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from service.http.sse import _until, openai_events
from tests.api.helpers import until


class Producer:
    """Payloads on demand: each waits until the test releases it."""

    def __init__(self) -> None:
        self.asked = 0
        self.released = asyncio.Queue[str]()
        self.cancelled = False
        self.closed = False

    async def payloads(self) -> AsyncIterator[str]:
        try:
            while True:
                self.asked += 1
                yield await self.released.get()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed = True


async def test_a_deadline_passing_while_waiting_for_a_payload_is_a_timeout() -> None:
    producer = Producer()
    loop = asyncio.get_running_loop()
    stream = _until(producer.payloads(), loop.time() + 0.05)
    with pytest.raises(TimeoutError):
        await anext(stream)
    assert producer.cancelled  # the wait was interrupted, and the producer saw it


async def test_a_deadline_passing_between_payloads_ends_the_stream_at_the_next_wait() -> None:
    producer = Producer()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.05
    stream = _until(producer.payloads(), deadline)
    producer.released.put_nowait("first")
    assert await anext(stream) == "first"
    await until(lambda: loop.time() > deadline, "the deadline passed while not waiting")
    await asyncio.sleep(0)  # let the timer's callback run (it is due)
    with pytest.raises(TimeoutError):
        await anext(stream)
    assert producer.asked == 1 and not producer.cancelled  # nothing more was asked for


async def test_another_cancellation_is_not_taken_for_the_deadline() -> None:
    producer = Producer()
    loop = asyncio.get_running_loop()

    async def consume() -> None:
        async for _ in _until(producer.payloads(), loop.time() + 3600):
            pass

    task = asyncio.create_task(consume())
    await until(lambda: producer.asked == 1, "the consumer waits for a payload")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_payloads_pass_and_the_timer_goes_with_the_stream() -> None:
    producer = Producer()
    loop = asyncio.get_running_loop()
    for text in ("a", "b"):
        producer.released.put_nowait(text)
    events = openai_events(producer.payloads(), deadline=loop.time() + 3600)
    assert [await anext(events), await anext(events)] == ["a", "b"]
    await events.aclose()  # type: ignore[attr-defined]
    assert producer.closed
    timers = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
    assert all(h.when() < loop.time() + 3000 for h in timers)  # the hour-long timer is gone

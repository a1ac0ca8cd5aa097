"""A request's deadline around its admission and its engine work.

The deadline (the request's `timeout`, else its header's, else the server's maximum, and never
more than that maximum) covers the wait for admission and the whole engine work (every step of
a summary's map-reduce); when it passes, the engine requests are aborted (their generators are
closed) and the caller gets `DeadlineExceededError` (504). Admission is told the deadline: a
request whose estimated queue wait already passes it is refused at once (503 `overloaded`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from service.errors import DeadlineExceededError
from service.runtime.admission import Admission, Permit

T = TypeVar("T")


def deadline_for(
    arrived: float, requested: float | None, header: float | None, limit: float
) -> float:
    """The loop time by which the request must be done."""
    chosen = requested if requested is not None else header
    return arrived + (limit if chosen is None else min(chosen, limit))


def expired() -> DeadlineExceededError:
    return DeadlineExceededError("The request did not finish before its deadline.")


async def admit_and_run(
    admission: Admission,
    cost: int,
    work: Callable[[], Awaitable[T]],
    *,
    priority: int,
    deadline: float,
) -> T:
    """Admit `cost` sequences, then run `work()`, all before `deadline`."""
    try:
        async with asyncio.timeout_at(deadline):
            permit = await admission.acquire(cost, priority=priority, deadline=deadline)
            try:
                return await work()
            finally:
                permit.release()
    except TimeoutError as err:
        raise expired() from err


async def admit_before(
    admission: Admission, cost: int, *, priority: int, deadline: float
) -> Permit:
    """Admit `cost` sequences before `deadline`; the caller releases the permit (a stream holds
    it until its last event)."""
    try:
        async with asyncio.timeout_at(deadline):
            return await admission.acquire(cost, priority=priority, deadline=deadline)
    except TimeoutError as err:
        raise expired() from err

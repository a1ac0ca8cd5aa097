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
from service.runtime.admission import NO_TENANT, Admission, Permit

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
    tenant: str = NO_TENANT,
    weight: float = 1.0,
    admitted: Callable[[Permit], None] | None = None,
) -> T:
    """Admit `cost` sequences, then run `work()`, all before `deadline`; `admitted` is told of
    the permit first (the guard observes its wait)."""
    try:
        async with asyncio.timeout_at(deadline):
            permit = await admission.acquire(
                cost, priority=priority, deadline=deadline, tenant=tenant, weight=weight
            )
            if admitted is not None:
                admitted(permit)
            try:
                return await work()
            finally:
                permit.release()
    except TimeoutError as err:
        raise expired() from err


async def admit_before(
    admission: Admission,
    cost: int,
    *,
    priority: int,
    deadline: float,
    tenant: str = NO_TENANT,
    weight: float = 1.0,
) -> Permit:
    """Admit `cost` sequences before `deadline`; the caller releases the permit (a stream holds
    it until its last event)."""
    try:
        async with asyncio.timeout_at(deadline):
            return await admission.acquire(
                cost, priority=priority, deadline=deadline, tenant=tenant, weight=weight
            )
    except TimeoutError as err:
        raise expired() from err

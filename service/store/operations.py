"""Store operations that run to their end even when their caller is cancelled.

A caller is cancelled when its client disconnects (`CancelOnDisconnect`) or when the app stops
its background tasks (heartbeats, the batch drainer, tenant sync). On SQLite, a write cancelled
while its statement runs in aiosqlite's thread can leave its connection in a transaction that
is never ended, holding the database's write lock: every later write then waits out the busy
timeout and fails with 503 `store_unavailable` (seen as a background run that could not be
marked `failed` at shutdown after a cancelled heartbeat). So each public coroutine method of a
repository runs in a task of its own, shielded from its caller's cancellation: the caller
still stops at once, and the operation, a few milliseconds of database work, commits or rolls
back on its own.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound=type)

# Operations whose callers were cancelled, held until they end (the loop keeps only weak
# references to tasks).
_finishing: set[asyncio.Task[Any]] = set()
_CANCELLABLE = "_store_reads_the_callers_stream"  # the mark of `reads_the_callers_stream`


def _ended(operation: asyncio.Task[Any]) -> None:
    _finishing.discard(operation)
    if not operation.cancelled() and (error := operation.exception()) is not None:
        logger.warning("a store operation whose caller had gone failed: %r", error)


def runs_to_completion(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """`method`, run in a task that its caller's cancellation does not cancel."""

    @functools.wraps(method)
    async def shielded(*args: P.args, **kwargs: P.kwargs) -> T:
        operation = asyncio.ensure_future(method(*args, **kwargs))
        try:
            return await asyncio.shield(operation)
        except asyncio.CancelledError:
            _finishing.add(operation)
            operation.add_done_callback(_ended)  # at once if it has ended: its error is read
            raise

    return shielded


def reads_the_callers_stream(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Mark a method that `store_operations` leaves cancellable: it consumes a stream of its
    caller's (an upload), which may stall for as long as the client likes, so it must stop
    with its caller; its own database writes are shielded one by one instead."""
    method.__dict__[_CANCELLABLE] = True
    return method


def store_operations(cls: C) -> C:
    """Class decorator of a repository: its public coroutine methods run to completion, but
    for those that read their caller's stream (async generators, which read, are left as
    they are)."""
    for name, member in list(vars(cls).items()):
        if (
            not name.startswith("_")
            and inspect.iscoroutinefunction(member)
            and not getattr(member, _CANCELLABLE, False)
        ):
            setattr(cls, name, runs_to_completion(member))
    return cls


async def finish_pending() -> None:
    """Wait for the operations whose callers were cancelled, so that closing the store does
    not cut them (each is bounded by the store's own timeouts)."""
    if _finishing:
        await asyncio.wait(list(_finishing))

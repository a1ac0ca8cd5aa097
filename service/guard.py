"""What every engine-bound request passes through: its deadline, then admission.

A route prepares its request (validation, tokenization: no engine work), works out what it
costs in engine sequences, and hands the engine work to its `RequestGuard`:

    return await guard.run(cost, lambda: completions.complete(prepared, engine), request.timeout)

The deadline (`timeout` field, else the `x-request-timeout` header, else the server's maximum,
and never more than that) covers the wait for admission and the whole engine work (every step
of a summary's map-reduce); when it passes, the engine requests are aborted (their generators
are closed) and the client gets 504, or mid-stream a final error event.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sse_starlette import EventSourceResponse

from service import context
from service.admission import Admission, Permit
from service.config import Settings
from service.deps import SettingsDep
from service.errors import DeadlineExceededError, InvalidRequestError
from service.routes.sse import event_stream

T = TypeVar("T")

TIMEOUT_HEADER = "x-request-timeout"


def _header_timeout(request: Request) -> float | None:
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequestError(
            f"The {TIMEOUT_HEADER} header must be a positive number of seconds.",
            param=TIMEOUT_HEADER,
        )
    return value


@dataclass(slots=True)
class RequestGuard:
    admission: Admission
    settings: Settings
    arrived: float  # loop.time() when the handler started
    header_timeout: float | None

    def deadline(self, timeout: float | None) -> float:
        chosen = timeout if timeout is not None else self.header_timeout
        limit = self.settings.max_request_timeout_seconds
        return self.arrived + (limit if chosen is None else min(chosen, limit))

    async def run(
        self, cost: int, work: Callable[[], Awaitable[T]], requested_timeout: float | None = None
    ) -> T:
        """Admit, then run `work()`, all before the deadline."""
        try:
            async with asyncio.timeout_at(self.deadline(requested_timeout)):
                permit = await self.admission.acquire(cost, priority=context.current_priority())
                try:
                    return await work()
                finally:
                    permit.release()
        except TimeoutError as err:
            raise _expired() from err

    async def stream(
        self,
        cost: int,
        payloads: Callable[[], AsyncIterator[str]],
        requested_timeout: float | None = None,
    ) -> EventSourceResponse:
        """Admit before the response starts (a refusal is still an HTTP status), then stream
        until the deadline."""
        deadline = self.deadline(requested_timeout)
        try:
            async with asyncio.timeout_at(deadline):
                permit = await self.admission.acquire(cost, priority=context.current_priority())
        except TimeoutError as err:
            raise _expired() from err
        ctx = context.current()
        if ctx is not None:  # released when the request ends, even if the stream never starts
            ctx.permits.append(permit)
        return event_stream(payloads(), self.settings, deadline=deadline, permit=permit)


def _expired() -> DeadlineExceededError:
    return DeadlineExceededError("The request did not finish before its deadline.")


async def get_guard(request: Request, settings: SettingsDep) -> RequestGuard:
    admission: Admission = request.app.state.admission
    return RequestGuard(
        admission, settings, asyncio.get_running_loop().time(), _header_timeout(request)
    )


GuardDep = Annotated[RequestGuard, Depends(get_guard)]

__all__ = ["GuardDep", "Permit", "RequestGuard", "get_guard"]

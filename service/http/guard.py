"""What every engine-bound request passes through: its deadline, then admission.

A route prepares its request (validation, tokenization: no engine work; the prepared request
knows its admission cost and its caller's priority) and hands the engine work to its
`RequestGuard`:

    return await guard.run(prepared, lambda: completions.complete(prepared, engine), ...)

The HTTP side lives here: the `x-request-timeout` header, and for streams the response, which
starts only once the request is admitted (a refusal is still an HTTP status) and ends with a
`timeout` event when the deadline passes mid-stream. The deadline and admission themselves are
`service/runtime/deadlines.py`'s.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Request
from sse_starlette import EventSourceResponse

from service.config import Settings
from service.errors import InvalidRequestError
from service.http.deps import GatewayDep
from service.http.sse import (
    RESPONSES,
    NamedEvent,
    NamedFraming,
    event_stream,
    named_event_stream,
)
from service.runtime.admission import Admission, Permit
from service.runtime.deadlines import admit_and_run, admit_before, deadline_for
from service.telemetry import context

T = TypeVar("T")

TIMEOUT_HEADER = "x-request-timeout"


class Admissible(Protocol):
    """A prepared request, as admission sees it."""

    @property
    def cost(self) -> int:
        """Engine sequences it will run (admission's unit)."""
        ...

    @property
    def priority(self) -> int:
        """Its caller's class, vLLM's convention: lower is admitted first."""
        ...


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
        return deadline_for(
            self.arrived, timeout, self.header_timeout, self.settings.max_request_timeout_seconds
        )

    async def run(
        self,
        prepared: Admissible,
        work: Callable[[], Awaitable[T]],
        requested_timeout: float | None = None,
    ) -> T:
        """Admit, then run `work()`, all before the deadline."""
        return await admit_and_run(
            self.admission,
            prepared.cost,
            work,
            priority=prepared.priority,
            deadline=self.deadline(requested_timeout),
        )

    async def stream(
        self,
        prepared: Admissible,
        payloads: Callable[[], AsyncIterator[str]],
        requested_timeout: float | None = None,
    ) -> EventSourceResponse:
        """Admit before the response starts (a refusal is still an HTTP status), then stream
        until the deadline."""
        deadline, permit = await self._admit_stream(prepared, requested_timeout)
        return event_stream(payloads(), self.settings, deadline=deadline, permit=permit)

    async def stream_named(
        self,
        prepared: Admissible,
        events: Callable[[], AsyncIterator[NamedEvent]],
        requested_timeout: float | None = None,
        *,
        framing: NamedFraming = RESPONSES,
    ) -> EventSourceResponse:
        """`stream` for a stream of named events (the Responses API's; Anthropic's with the
        `ANTHROPIC` framing)."""
        deadline, permit = await self._admit_stream(prepared, requested_timeout)
        return named_event_stream(
            events(), self.settings, deadline=deadline, permit=permit, framing=framing
        )

    async def _admit_stream(
        self, prepared: Admissible, requested_timeout: float | None
    ) -> tuple[float, Permit]:
        deadline = self.deadline(requested_timeout)
        permit = await admit_before(
            self.admission, prepared.cost, priority=prepared.priority, deadline=deadline
        )
        ctx = context.current()
        if ctx is not None:  # released when the request ends, even if the stream never starts
            ctx.permits.append(permit)
        return deadline, permit


async def get_guard(request: Request, gateway: GatewayDep) -> RequestGuard:
    return RequestGuard(
        gateway.admission,
        gateway.settings,
        asyncio.get_running_loop().time(),
        _header_timeout(request),
    )


async def get_embedding_guard(request: Request, gateway: GatewayDep) -> RequestGuard:
    """The same guard on the embedding engine's own admission (its inputs are the unit)."""
    return RequestGuard(
        gateway.engine_state.embedding_admission,
        gateway.settings,
        asyncio.get_running_loop().time(),
        _header_timeout(request),
    )


GuardDep = Annotated[RequestGuard, Depends(get_guard)]
EmbeddingGuardDep = Annotated[RequestGuard, Depends(get_embedding_guard)]

__all__ = ["Admissible", "EmbeddingGuardDep", "GuardDep", "Permit", "RequestGuard", "get_guard"]

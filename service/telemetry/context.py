"""Request-scoped observability state, reachable from services without FastAPI.

The middleware opens a `RequestContext` for each HTTP request and binds it to a contextvar;
services that call the engine (`services/core/generation.py`) add their engine time, token
counts and token timestamps to it, and log records pick up its request id. It carries telemetry
only: who is calling (`service/caller.py`), at which priority and on which adapter travel as
arguments, never through here. Child tasks (a stream's
producer, the jobs of a batch) inherit the same object, so their updates land in one place.

On the token path only timestamps are taken; the metrics are computed once, when the request
ends (`service/http/observability.py`).
"""

from __future__ import annotations

from array import array
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from service.telemetry.timings import EngineTimings

if TYPE_CHECKING:
    from service.telemetry.metrics import GatewayMetrics


class Releasable(Protocol):
    """An admission permit (`service/runtime/admission.py`), seen from the request context."""

    def release(self) -> None: ...


_current: ContextVar[RequestContext | None] = ContextVar("gateway_request", default=None)


@dataclass(slots=True, eq=False)
class RequestContext:
    request_id: str
    started: float  # perf_counter() when the request arrived
    metrics: GatewayMetrics | None = None  # the app's, for task-level counters
    log_prompts: bool = False
    # Time during which at least one engine call of this request was awaited (`engine_wait`):
    # concurrent calls (a batch, a summary's map step) count once, not once each.
    engine_seconds: float = 0.0
    _engine_waits: int = 0
    _engine_since: float = 0.0
    engine_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # perf_counter() of every stream event that carried tokens: TTFT and inter-token latency.
    token_times: array[float] = field(default_factory=lambda: array("d"))
    # (engine request id, the engine's own timings) for finished engine requests: spans, logs.
    engine_timings: list[tuple[str, EngineTimings]] = field(default_factory=list)
    # The status of an error sent in-band after a stream had started (the HTTP status is 200).
    stream_error_status: int | None = None
    # The `code` of the error answered (or sent in-band): the outcome of a 503 depends on it.
    error_code: str | None = None
    # Admission permits to release when the request ends, however it ends (`http/guard.py`).
    permits: list[Releasable] = field(default_factory=list)
    # Free-form fields a service adds to the access log line (bounded values only).
    log_fields: dict[str, Any] = field(default_factory=dict)
    # The served model the request named, once found served: the metrics' `model` label.
    model: str | None = None
    # Work started by the request that outlives it (a background response) and adds its tokens
    # here: the rate limiter's token charge waits for the last of it (`work_started`).
    open_work: int = 0
    deferred_charge: Callable[[int], Awaitable[None]] | None = None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def work_started(self) -> None:
        self.open_work += 1

    async def work_ended(self) -> None:
        """The last work outliving the request ended: its tokens are charged now, when the
        request has ended already (else the request's end charges them)."""
        self.open_work -= 1
        if self.open_work == 0 and self.deferred_charge is not None:
            charge, self.deferred_charge = self.deferred_charge, None
            await charge(self.tokens)

    def engine_enter(self) -> None:
        if self._engine_waits == 0:
            self._engine_since = perf_counter()
        self._engine_waits += 1

    def engine_exit(self) -> float:
        """Leave an engine wait; returns the clock reading, for callers that need one."""
        now = perf_counter()
        self._engine_waits -= 1
        if self._engine_waits == 0:
            self.engine_seconds += now - self._engine_since
        return now


def current() -> RequestContext | None:
    """The context of the request being served, or None outside one."""
    return _current.get()


def current_request_id() -> str | None:
    ctx = _current.get()
    return ctx.request_id if ctx is not None else None


def label_model(name: str) -> None:
    """The served model the request named: its metrics' `model` label."""
    ctx = _current.get()
    if ctx is not None:
        ctx.model = name


def count_partial_output(tokens: int) -> None:
    """Tokens an engine request generated before it was aborted, where no delta carried them
    (a non-streaming request cancelled by a disconnect or its deadline)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.completion_tokens += tokens


@contextmanager
def engine_wait() -> Iterator[None]:
    """Count the block as engine time of the current request (for engine calls made outside
    `services/core/generation.py`, such as beam search)."""
    ctx = _current.get()
    if ctx is None:
        yield
        return
    ctx.engine_enter()
    try:
        yield
    finally:
        ctx.engine_exit()


@contextmanager
def bound(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def new_context(
    request_id: str, *, metrics: GatewayMetrics | None = None, log_prompts: bool = False
) -> RequestContext:
    return RequestContext(request_id, perf_counter(), metrics=metrics, log_prompts=log_prompts)

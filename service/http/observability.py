"""Pure ASGI middleware: request id, timing, metrics, the access log line and the request span.

Pure ASGI rather than `BaseHTTPMiddleware`, which would buffer streams. Per request it:
- takes `x-request-id` from the client (if it is a sane token) or makes one, echoes it on the
  response and binds it to the request context (`service.telemetry.context`), so logs and
  engine request ids carry it;
- adds `x-gateway-overhead-ms` to non-streaming responses: the time so far minus the time spent
  waiting on the engine (`services/core/generation.py` measures that);
- when the request ends, however it ends (answer, error, client gone, cancellation), updates the
  metrics in `finally` and writes one access log line (`service.access`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.errors import CLIENT_CLOSED_REQUEST
from service.http.paths import PROBE_PATHS
from service.telemetry import context
from service.telemetry.context import RequestContext
from service.telemetry.logs import install_request_ids, keep_payloads_out
from service.telemetry.metrics import (
    METHODS,
    OTHER_MODEL,
    UNMATCHED,
    EndpointMetrics,
    GatewayMetrics,
    Outcome,
    outcome_for,
)
from service.telemetry.tracing import RequestSpan, RequestTracer, build_tracer

access_logger = logging.getLogger("service.access")

REQUEST_ID_HEADER = b"x-request-id"
OVERHEAD_HEADER = b"x-gateway-overhead-ms"
# A client's id is kept when it is a short token; anything else (spaces, quotes, 200 characters of
# prompt) is replaced, since the id goes into logs, headers and engine request ids.
_CLIENT_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


@dataclass(slots=True)
class Observability:
    """What the middleware needs from the app; one per app (`GatewayState.observability`)."""

    metrics: GatewayMetrics
    tracer: RequestTracer | None = None
    log_prompts: bool = False
    route_paths: frozenset[str] | None = None  # the app's own paths, read at the first request

    async def aclose(self) -> None:
        """Flush the spans still queued for export (the lifespan calls this last)."""
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.shutdown)


def install_observability(app: FastAPI, settings: Settings) -> Observability:
    """Metrics, `/metrics`, tracing and request ids for `app`.

    Call it after adding any other middleware: the last added is the outermost, and this one
    must see every request, including those another middleware answers itself (401, 429).
    """
    install_request_ids()
    keep_payloads_out(log_prompts=settings.log_prompts)
    observability = Observability(
        GatewayMetrics(), build_tracer(settings), log_prompts=settings.log_prompts
    )
    app.add_middleware(ObservabilityMiddleware, observability=observability)
    return observability


@dataclass(slots=True)
class _Exchange:
    status: int = 0
    streaming: bool = False
    complete: bool = False  # the last body byte was sent
    disconnected: bool = False  # the client left before that


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _CLIENT_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return secrets.token_hex(16)


def endpoint_of(scope: Scope, obs: Observability) -> str:
    """The route template that served the request (bounded), or `unmatched`.

    A request answered before routing (401, 413, 429 from the security middleware) has no
    route; its path names it when it is one of the app's own (every route is a fixed path).
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    if obs.route_paths is None and app is not None and hasattr(app, "routes"):
        obs.route_paths = frozenset(getattr(r, "path", "") for r in app.routes)
    paths = obs.route_paths
    return scope["path"] if paths is not None and scope["path"] in paths else UNMATCHED


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, observability: Observability) -> None:
        self.app = app
        self.observability = observability

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        obs = self.observability
        request_id = _request_id(scope["headers"])
        ctx = context.new_context(request_id, metrics=obs.metrics, log_prompts=obs.log_prompts)
        # For handlers outside this middleware (Starlette's 500 handler): `request.state`.
        scope.setdefault("state", {})["request_id"] = request_id
        exchange = _Exchange()
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append(id_header)
                exchange.streaming = any(
                    name == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in headers
                )
                if not exchange.streaming:
                    overhead = perf_counter() - ctx.started - ctx.engine_seconds
                    headers.append((OVERHEAD_HEADER, b"%.3f" % (max(overhead, 0.0) * 1000)))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                exchange.complete = True
            await send(message)

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not exchange.complete:
                exchange.disconnected = True
            return message

        with context.bound(ctx):
            span = obs.tracer.start(scope["method"], scope["headers"]) if obs.tracer else None
            obs.metrics.in_flight.inc()
            error: BaseException | None = None
            try:
                await self.app(scope, receive_wrapper, send_wrapper)
            except BaseException as exc:
                error = exc
                raise
            finally:
                obs.metrics.in_flight.dec()
                for permit in ctx.permits:  # a stream that never started holds its permit
                    permit.release()
                await _finish(scope, ctx, exchange, error, obs, span)


def _status_and_outcome(
    ctx: RequestContext, exchange: _Exchange, error: BaseException | None
) -> tuple[int, Outcome]:
    if exchange.disconnected or isinstance(error, asyncio.CancelledError):
        return CLIENT_CLOSED_REQUEST, "aborted"
    if error is not None:
        return exchange.status or 500, "engine_error"
    status = exchange.status or 500  # an app that never answered: the server sends a 500
    if ctx.stream_error_status is not None:
        return status, outcome_for(ctx.stream_error_status, ctx.error_code)
    return status, outcome_for(status, ctx.error_code)


def _count_tokens(per_endpoint: EndpointMetrics, ctx: RequestContext) -> None:
    per_endpoint.prompt_tokens.inc(ctx.prompt_tokens)
    per_endpoint.completion_tokens.inc(ctx.completion_tokens)


async def _count_tokens_when_settled(per_endpoint: EndpointMetrics, ctx: RequestContext) -> None:
    _count_tokens(per_endpoint, ctx)


def _observe_engine_work(
    per_endpoint: EndpointMetrics, ctx: RequestContext, overhead: float
) -> None:
    """The request's overhead, tokens (unless a background run it started counts them when it
    ends), TTFT and ITL."""
    per_endpoint.overhead.observe(overhead)
    if not ctx.open_work:
        _count_tokens(per_endpoint, ctx)
    times = ctx.token_times
    if times:
        per_endpoint.ttft.observe(times[0] - ctx.started)
        itl = per_endpoint.itl
        for i in range(1, len(times)):
            itl.observe(times[i] - times[i - 1])


async def _finish(
    scope: Scope,
    ctx: RequestContext,
    exchange: _Exchange,
    error: BaseException | None,
    obs: Observability,
    span: RequestSpan | None,
) -> None:
    metrics = obs.metrics
    duration = perf_counter() - ctx.started
    endpoint = endpoint_of(scope, obs)
    method = scope["method"] if scope["method"] in METHODS else "OTHER"
    status, outcome = _status_and_outcome(ctx, exchange, error)
    model = ctx.model or OTHER_MODEL
    metrics.count_request(endpoint, method, status, outcome, duration, model)
    overhead = max(duration - ctx.engine_seconds, 0.0)
    if ctx.open_work:  # a background response it started: its tokens once its run has ended
        tokens = metrics.endpoint(endpoint, model)
        await ctx.settle(partial(_count_tokens_when_settled, tokens, ctx))
    if ctx.engine_requests:
        _observe_engine_work(metrics.endpoint(endpoint, model), ctx, overhead)
    if span is not None:
        span.end(
            name=f"{scope['method']} {endpoint}",
            attributes={
                "http.request.method": scope["method"],
                "http.route": endpoint,
                "http.response.status_code": status,
                "gateway.request_id": ctx.request_id,
                "gateway.outcome": outcome,
                "gen_ai.usage.input_tokens": ctx.prompt_tokens,
                "gen_ai.usage.output_tokens": ctx.completion_tokens,
            },
            engine=ctx.engine_timings,
            error=outcome == "engine_error",
        )
    level = logging.DEBUG if endpoint in PROBE_PATHS and outcome == "success" else logging.INFO
    if not access_logger.isEnabledFor(level):
        return
    fields: dict[str, Any] = {
        "method": scope["method"],
        "endpoint": endpoint,
        "path": scope["path"][:256],
        "status": status,
        "outcome": outcome,
        "stream": exchange.streaming,
        "duration_ms": round(duration * 1000, 3),
        "engine_ms": round(ctx.engine_seconds * 1000, 3),
        "overhead_ms": round(overhead * 1000, 3),
        "prompt_tokens": ctx.prompt_tokens,
        "completion_tokens": ctx.completion_tokens,
    }
    if ctx.engine_timings:  # the engine's own queue time, the longest of the request's calls
        queued = max(t.scheduled - t.queued for _, t in ctx.engine_timings)
        fields["engine_queue_ms"] = round(queued * 1000, 3)
    if ctx.token_times:
        fields["ttft_ms"] = round((ctx.token_times[0] - ctx.started) * 1000, 3)
    fields.update(ctx.log_fields)
    client = scope.get("client")
    if client:
        fields["client"] = client[0]
    if span is not None:
        fields["trace_id"] = span.trace_id
    access_logger.log(
        level, "%s %s %d %s", scope["method"], endpoint, status, outcome, extra={"fields": fields}
    )

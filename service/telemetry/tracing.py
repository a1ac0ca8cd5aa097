"""Optional OpenTelemetry tracing: a span per request, children for engine queueing and generation.

Off by default. With `otlp_traces_endpoint` set, spans go to that OTLP/HTTP collector (the
standard `OTEL_*` variables, e.g. `OTEL_EXPORTER_OTLP_HEADERS` or `OTEL_SERVICE_NAME`, apply).
OpenTelemetry is imported only then, so the default path neither imports nor calls it
(install it with the `otel` extra; vLLM's own requirements already bring it).

The request span starts when the request arrives (an incoming `traceparent` is honoured) and is
the current span while the request is served. The engine's children are drawn after the fact
from the engine's own timestamps (`EngineTimings`, vLLM's per-request stats): `engine.queue` from
queued to scheduled, `engine.generate` from scheduled to the last token.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from service.telemetry.timings import EngineTimings

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from service.config import Settings


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL: a bare collector address gets the standard `/v1/traces` path."""
    scheme, sep, rest = endpoint.partition("://")
    if sep and "/" not in rest.rstrip("/"):
        return f"{scheme}://{rest.rstrip('/')}/v1/traces"
    return endpoint


class RequestTracer:
    """Starts request spans on one TracerProvider (owned by one app)."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import trace

        self._provider = provider
        self._tracer = trace.get_tracer("llm-gateway", tracer_provider=provider)

    def start(self, method: str, headers: Sequence[tuple[bytes, bytes]]) -> RequestSpan:
        """A server span, current until `end` (same task), child of an incoming `traceparent`."""
        from opentelemetry import context, trace
        from opentelemetry.propagate import extract

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        span = self._tracer.start_span(
            method,  # renamed to "METHOD /route" once the route is known
            context=extract(carrier),
            kind=trace.SpanKind.SERVER,
        )
        token = context.attach(trace.set_span_in_context(span))
        return RequestSpan(self._tracer, span, token)

    def shutdown(self) -> None:
        """Flush and stop the exporter (blocking: call it off the event loop)."""
        self._provider.shutdown()


class RequestSpan:
    def __init__(self, tracer: Tracer, span: Span, token: Token[Context]) -> None:
        self._tracer = tracer
        self.span = span
        self._token = token

    @property
    def trace_id(self) -> str:
        return f"{self.span.get_span_context().trace_id:032x}"

    def end(
        self,
        *,
        name: str,
        attributes: Mapping[str, str | int | float | bool],
        engine: Sequence[tuple[str, EngineTimings]],
        error: bool,
    ) -> None:
        """Finish the request span, first drawing the engine's children from its timestamps."""
        from opentelemetry import context, trace
        from opentelemetry.trace import Status, StatusCode

        span = self.span
        span.update_name(name)
        span.set_attributes(attributes)
        if error:
            span.set_status(Status(StatusCode.ERROR))
        parent = trace.set_span_in_context(span)
        # Engine timestamps are time.monotonic() seconds; spans want Unix-epoch nanoseconds.
        epoch_offset = time.time_ns() - time.monotonic_ns()
        for engine_request_id, timings in engine:
            for child, start, end in (
                ("engine.queue", timings.queued, timings.scheduled),
                ("engine.generate", timings.scheduled, timings.last_token),
            ):
                self._tracer.start_span(
                    child,
                    context=parent,
                    start_time=epoch_offset + int(start * 1e9),
                    attributes={"gateway.engine_request_id": engine_request_id},
                ).end(end_time=epoch_offset + int(end * 1e9))
        span.end()
        context.detach(self._token)


def build_tracer(
    settings: Settings, *, exporter: SpanExporter | None = None
) -> RequestTracer | None:
    """The app's tracer, or None when tracing is off. `exporter` replaces OTLP (tests)."""
    if exporter is None and settings.otlp_traces_endpoint is None:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "llm-gateway")})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert settings.otlp_traces_endpoint is not None
        otlp = OTLPSpanExporter(endpoint=traces_url(settings.otlp_traces_endpoint))
        provider.add_span_processor(BatchSpanProcessor(otlp))
    return RequestTracer(provider)

"""The access log, request ids in log records, prompt privacy and tracing, on the fake engine."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.routes.tasks import router as tasks_router
from service.telemetry.logs import JsonFormatter
from service.telemetry.metrics import record_classification, record_summary
from service.telemetry.tracing import build_tracer
from tests.api.helpers import (
    CHAT,
    COMPLETIONS,
    ENDPOINTS,
    access_records,
    body_for,
    chat_body,
    everything_logged,
    serve,
)
from tests.conftest import FAKE_MODEL

SECRET = "Zanzibar-7731 is my password"


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("stream", [pytest.param(False, id="plain"), pytest.param(True, id="sse")])
async def test_one_access_line_per_request_with_its_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str, stream: bool
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.post(
        path, json=body_for(path, stream=stream), headers={"x-request-id": "log-me"}
    )
    assert response.status_code == 200
    (record,) = access_records(caplog)
    assert getattr(record, "request_id", None) == "log-me"
    fields: dict[str, Any] = getattr(record, "fields", {})
    assert fields["endpoint"] == path
    assert fields["status"] == 200
    assert fields["outcome"] == "success"
    assert fields["stream"] is stream
    assert fields["prompt_tokens"] > 0
    assert fields["completion_tokens"] > 0
    assert fields["duration_ms"] >= fields["engine_ms"] >= 0
    assert fields["overhead_ms"] >= 0
    assert fields["engine_queue_ms"] >= 0
    assert ("ttft_ms" in fields) is stream
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "log-me"
    assert line["level"] == "INFO"
    assert line["logger"] == "service.access"


async def test_a_request_that_never_reached_the_engine_is_all_overhead(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.post(CHAT, json={**chat_body(), "model": "nope"})
    assert response.status_code == 404
    (record,) = access_records(caplog)
    fields: dict[str, Any] = getattr(record, "fields", {})
    assert (fields["status"], fields["outcome"]) == (404, "client_error")
    assert (fields["engine_ms"], fields["prompt_tokens"], fields["completion_tokens"]) == (0, 0, 0)
    assert fields["overhead_ms"] == fields["duration_ms"]
    assert "engine_queue_ms" not in fields
    assert record.getMessage() == f"POST {CHAT} 404 client_error"


async def test_probes_log_at_debug_only(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await client.get("/health")
    await client.get("/metrics")
    assert access_records(caplog) == []
    caplog.set_level(logging.DEBUG)
    await client.get("/health")
    assert [r.levelno for r in access_records(caplog)] == [logging.DEBUG]


async def test_every_record_of_a_request_carries_its_id(
    settings: Settings, fake_engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """A library's log line inside the request is traceable too (the record factory)."""
    app = create_app(settings, engine_factory=lambda: fake_engine)
    caplog.set_level(logging.INFO)
    async with serve(app, raise_app_exceptions=False) as client:
        fake_engine.fail_with = RuntimeError("boom")
        await client.post(CHAT, json=chat_body(stream=True), headers={"x-request-id": "s-1"})
        await client.post(CHAT, json=chat_body(), headers={"x-request-id": "p-1"})
    by_id = {(r.name, getattr(r, "request_id", None)) for r in caplog.records}
    assert ("service.http.sse", "s-1") in by_id  # "stream failed", inside the request
    assert ("service.http.encode", "p-1") in by_id  # "unhandled error", outside every middleware
    assert ("service.access", "s-1") in by_id
    assert ("service.access", "p-1") in by_id


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("stream", [pytest.param(False, id="plain"), pytest.param(True, id="sse")])
async def test_prompts_and_outputs_stay_out_of_logs_by_default(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str, stream: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    body = body_for(path, stream=stream, **{"content" if path == CHAT else "prompt": SECRET})
    assert (await client.post(path, json=body)).status_code == 200
    bad = body_for(path, **{"content" if path == CHAT else "prompt": SECRET}, temperature=9)
    assert (await client.post(path, json=bad)).status_code == 400
    logged = everything_logged(caplog)
    assert "service.access" in logged
    assert "Zanzibar" not in logged
    assert "Paris" not in logged  # the fake engine's reply


@pytest.mark.parametrize("stream", [pytest.param(False, id="plain"), pytest.param(True, id="sse")])
async def test_log_prompts_logs_prompt_and_output(
    fake_engine: FakeEngine, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    app = create_app(
        Settings(model=FAKE_MODEL, log_prompts=True), engine_factory=lambda: fake_engine
    )
    caplog.set_level(logging.INFO)
    async with serve(app) as client:
        body = body_for(COMPLETIONS, prompt=SECRET, stream=stream)
        await client.post(COMPLETIONS, json=body, headers={"x-request-id": "dbg"})
    (record,) = [r for r in caplog.records if r.getMessage() == "engine request io"]
    fields: dict[str, Any] = getattr(record, "fields", {})
    assert getattr(record, "request_id", None) == "dbg"
    assert SECRET in fields["prompt"]
    assert fields["outputs"] == ["The capital of France is Paris."]
    assert fields["engine_request_id"].startswith("dbg-")


# --- tracing


async def test_tracing_is_off_by_default(client: httpx.AsyncClient, app: Any) -> None:
    assert app.state.gateway.observability.tracer is None
    assert "traceparent" not in (await client.post(CHAT, json=chat_body())).headers


@pytest.mark.parametrize("stream", [pytest.param(False, id="plain"), pytest.param(True, id="sse")])
async def test_a_span_per_request_with_engine_children(
    settings: Settings, fake_engine: FakeEngine, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(settings, engine_factory=lambda: fake_engine)
    app.state.gateway.observability.tracer = build_tracer(settings, exporter=exporter)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    caplog.set_level(logging.INFO)
    async with serve(app) as client:
        response = await client.post(
            COMPLETIONS,
            json=body_for(COMPLETIONS, prompt=["one", "two"], stream=stream),
            headers={"traceparent": parent, "x-request-id": "traced"},
        )
    assert response.status_code == 200
    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert root.name == f"POST {COMPLETIONS}"
    assert root.attributes is not None
    assert root.attributes["gateway.request_id"] == "traced"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["gateway.outcome"] == "success"
    assert root.context is not None and root.parent is not None
    assert f"{root.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{root.parent.span_id:016x}" == "b7ad6b7169203331"
    children = [s for s in spans if s is not root]
    assert sorted(s.name for s in children) == ["engine.generate"] * 2 + ["engine.queue"] * 2
    for child in children:
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.start_time is not None and child.end_time is not None
        assert root.start_time is not None and root.end_time is not None
        assert child.start_time <= child.end_time
    (access,) = access_records(caplog)
    assert getattr(access, "fields", {})["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


async def test_lifespan_end_shuts_the_tracer_down(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    app = create_app(settings, engine_factory=FakeEngine)
    app.state.gateway.observability.tracer = build_tracer(settings, exporter=exporter)
    async with serve(app) as client:
        await client.get("/health")
    assert len(exporter.get_finished_spans()) == 1
    exporter.clear()
    # After shutdown the provider drops new spans instead of exporting them.
    app.state.gateway.observability.tracer.start("GET", []).end(
        name="late", attributes={}, engine=[], error=False
    )
    assert exporter.get_finished_spans() == ()


# --- task-level counters


async def test_task_counters_record_inside_a_request(settings: Settings) -> None:
    app = create_app(settings, engine_factory=FakeEngine)

    @app.get("/test-task")
    async def task() -> dict[str, str]:
        record_classification("positive", preset="sentiment")
        record_classification("my own label", preset=None)
        record_summary(chunks=5, depth=2)
        return {}

    assert tasks_router is not None  # the task routes exist beside this probe route
    async with serve(app) as client:
        await client.get("/test-task")
        metrics = app.state.gateway.metrics
    registry = metrics.registry
    labels = {"preset": "sentiment", "label": "positive"}
    assert registry.get_sample_value("gateway_classify_labels_chosen_total", labels) == 1
    custom = {"preset": "custom", "label": "custom"}
    assert registry.get_sample_value("gateway_classify_labels_chosen_total", custom) == 1
    assert registry.get_sample_value("gateway_summarize_chunks_sum") == 5
    assert registry.get_sample_value("gateway_summarize_map_reduce_depth_sum") == 2
    record_summary(chunks=1, depth=0)  # outside a request: nothing to count against
    assert registry.get_sample_value("gateway_summarize_chunks_count") == 1

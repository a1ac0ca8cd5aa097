"""Observability pieces without an app: outcomes, ids, log formats, tracing URLs, engine timings."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter
from typing import Any

import pytest
from pydantic import ValidationError
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.v1.metrics.stats import RequestStateStats

from service.config import Settings
from service.engine.base import EngineRequest, SamplingOptions
from service.engine.fake import FakeEngine
from service.engine.vllm import convert
from service.services.core.generation import engine_request_ids, run_to_completion
from service.telemetry import context
from service.telemetry.logs import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    install_request_ids,
    vllm_logging_environment,
)
from service.telemetry.metrics import OUTCOMES, GatewayMetrics, outcome_for
from service.telemetry.timings import EngineTimings
from service.telemetry.tracing import build_tracer, traces_url
from tests.api.helpers import until


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        pytest.param(200, "success", id="200"),
        pytest.param(204, "success", id="204"),
        pytest.param(400, "client_error", id="400"),
        pytest.param(401, "client_error", id="401"),
        pytest.param(404, "client_error", id="404"),
        pytest.param(413, "client_error", id="413"),
        pytest.param(408, "timeout", id="408"),
        pytest.param(429, "rejected", id="429"),
        pytest.param(499, "aborted", id="499"),
        pytest.param(500, "engine_error", id="500"),
        pytest.param(503, "rejected", id="503"),
        pytest.param(504, "timeout", id="504"),
    ],
)
def test_outcome_for_status(status: int, outcome: str) -> None:
    assert outcome_for(status) == outcome
    assert outcome in OUTCOMES


def test_engine_request_ids_take_the_http_request_id() -> None:
    outside = engine_request_ids("cmpl-1", 2)
    assert [re.fullmatch(r"cmpl-1-[0-9a-f]{8}-\d", i) is not None for i in outside] == [True] * 2
    with context.bound(context.new_context("req-9")):
        first, second = engine_request_ids("cmpl-1", 1), engine_request_ids("cmpl-1", 1)
    assert first[0].startswith("req-9-") and first[0].endswith("-0")
    assert first != second  # the same request calling the engine twice


def record(message: str = "hello", **attributes: Any) -> logging.LogRecord:
    made = logging.LogRecord("svc", logging.WARNING, __file__, 1, message, None, None)
    made.__dict__.update(attributes)
    return made


def test_json_formatter_writes_one_object_per_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        exc_info = sys.exc_info()
    made = record("multi\nline", request_id="r1", fields={"status": 200, "path": "/x"})
    made.exc_info = exc_info
    line = JsonFormatter().format(made)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "multi\nline"
    assert entry["request_id"] == "r1"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "svc"
    assert (entry["status"], entry["path"]) == (200, "/x")
    assert "ValueError: bad" in entry["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["ts"])


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        pytest.param({}, r"WARNING svc \[-\] hello$", id="no-request"),
        pytest.param({"request_id": "r2"}, r"WARNING svc \[r2\] hello$", id="request-id"),
        pytest.param(
            {"request_id": "r3", "fields": {"status": 404, "outcome": "client_error"}},
            r"\[r3\] hello status=404 outcome=client_error$",
            id="fields",
        ),
    ],
)
def test_text_formatter(attributes: dict[str, Any], expected: str) -> None:
    assert re.search(expected, TextFormatter().format(record(**attributes)))


def test_records_made_in_a_request_carry_its_id() -> None:
    install_request_ids()
    install_request_ids()  # idempotent: one factory, not two
    make = logging.getLogRecordFactory()
    with context.bound(context.new_context("inside")):
        inside = make("x", logging.INFO, __file__, 1, "m", None, None)
    outside = make("x", logging.INFO, __file__, 1, "m", None, None)
    assert getattr(inside, "request_id", None) == "inside"
    assert not hasattr(outside, "request_id")


def test_vllm_logs_json_through_our_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_LOGGING_CONFIG_PATH", raising=False)
    monkeypatch.delenv("VLLM_CONFIGURE_LOGGING", raising=False)
    env = vllm_logging_environment("debug")
    config = json.loads(Path(env["VLLM_LOGGING_CONFIG_PATH"]).read_text())
    module, _, name = config["formatters"]["json"]["()"].rpartition(".")
    assert getattr(importlib.import_module(module), name) is JsonFormatter
    assert config["loggers"]["vllm"]["level"] == "DEBUG"
    assert config["loggers"]["vllm"]["propagate"] is False


@pytest.mark.parametrize(
    "operator_env",
    [
        pytest.param({"VLLM_LOGGING_CONFIG_PATH": "/etc/mine.json"}, id="own-config"),
        pytest.param({"VLLM_CONFIGURE_LOGGING": "0"}, id="logging-off"),
    ],
)
def test_an_operators_vllm_logging_wins(
    monkeypatch: pytest.MonkeyPatch, operator_env: dict[str, str]
) -> None:
    for key, value in operator_env.items():
        monkeypatch.setenv(key, value)
    assert vllm_logging_environment("info") == {}


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        pytest.param("http://otel:4318", "http://otel:4318/v1/traces", id="bare"),
        pytest.param("http://otel:4318/", "http://otel:4318/v1/traces", id="slash"),
        pytest.param("https://x.io/otlp/v1/traces", "https://x.io/otlp/v1/traces", id="full"),
    ],
)
def test_traces_url(endpoint: str, url: str) -> None:
    assert traces_url(endpoint) == url


def test_tracing_settings() -> None:
    assert build_tracer(Settings()) is None
    with pytest.raises(ValidationError, match="otlp_traces_endpoint"):
        Settings(otlp_traces_endpoint="otel:4318")
    tracer = build_tracer(Settings(otlp_traces_endpoint="http://127.0.0.1:9"))
    assert tracer is not None
    tracer.shutdown()  # nothing was recorded, so nothing is sent


def test_gateway_metrics_are_per_instance_and_never_vllm_named() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()  # no "duplicated timeseries" error
    first.requests.labels("/x", "GET", "200", "success", "m").inc()
    assert second.registry.get_sample_value("gateway_requests_total", _labels()) is None
    names = {metric.name for metric in first.registry.collect()}
    assert names and all(name.startswith("gateway_") for name in names)


def _labels() -> dict[str, str]:
    return {"endpoint": "/x", "method": "GET", "status": "200", "outcome": "success", "model": "m"}


def _output(*, finished: bool, stats: RequestStateStats | None) -> RequestOutput:
    completion = CompletionOutput(0, "hi", [5], None, None, "length" if finished else None)
    return RequestOutput("r", None, [1, 2], None, [completion], finished, metrics=stats)


def test_engine_timings_come_from_vllms_request_stats() -> None:
    stats = RequestStateStats(queued_ts=10.0, scheduled_ts=10.5, first_token_ts=11.0)
    stats.last_token_ts = 12.0
    final = convert.chunk(_output(finished=True, stats=stats), SamplingOptions(max_tokens=1))
    assert final.timings == EngineTimings(10.0, 10.5, 11.0, 12.0)
    partial = convert.chunk(_output(finished=False, stats=stats), SamplingOptions(max_tokens=1))
    assert partial.timings is None


@pytest.mark.parametrize(
    "stats",
    [
        pytest.param(None, id="stats-off"),
        pytest.param(RequestStateStats(), id="never-scheduled"),
    ],
)
def test_no_engine_timings_without_stats(stats: RequestStateStats | None) -> None:
    final = convert.chunk(_output(finished=True, stats=stats), SamplingOptions(max_tokens=1))
    assert final.timings is None


async def test_concurrent_engine_calls_count_their_time_once() -> None:
    """A summary's map step calls the engine concurrently: engine time is their union."""
    engine = FakeEngine()
    engine.gate = asyncio.Event()
    request = EngineRequest(prompt_token_ids=[1, 2, 3], options=SamplingOptions(max_tokens=2))
    ctx = context.new_context("sum")
    with context.bound(ctx):
        calls = [asyncio.create_task(run_to_completion(engine, [request], "x")) for _ in range(2)]
        await until(lambda: engine.active == 2, "both calls wait at the gate")
        engine.open_gate()
        await asyncio.gather(*calls)
    elapsed = perf_counter() - ctx.started
    assert ctx.engine_requests == 2
    assert ctx.prompt_tokens == 6
    assert 0 < ctx.engine_seconds <= elapsed  # a sum of the two waits would exceed the wall time


def test_text_formatter_leaves_the_shared_record_alone() -> None:
    plain, none = record(), record(request_id=None)
    TextFormatter().format(plain)
    TextFormatter().format(none)
    assert not hasattr(plain, "request_id")
    assert vars(none)["request_id"] is None
    assert "request_id" not in json.loads(JsonFormatter().format(plain))


@pytest.fixture
def root_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore the root logger and uvicorn's loggers that configure_logging rewires."""
    monkeypatch.setenv("VLLM_CONFIGURE_LOGGING", "0")  # leave this process's vLLM alone
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    loggers = [logging.getLogger(n) for n in names]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    # A real server started earlier in the session (uvicorn.Config) leaves its levels behind.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.parametrize(
    ("log_format", "check"),
    [
        pytest.param("json", lambda line: json.loads(line)["message"] == "up", id="json"),
        pytest.param("text", lambda line: line.endswith("INFO uvicorn.error [-] up"), id="text"),
    ],
)
def test_configure_logging_sends_everything_through_one_handler(
    root_logging: None, capsys: pytest.CaptureFixture[str], log_format: str, check: Any
) -> None:
    configure_logging(Settings(log_format=log_format, log_level="info"))
    logging.getLogger("uvicorn.error").info("up")  # uvicorn's own handler is gone: ours prints
    logging.getLogger("quiet").debug("hidden")
    (line,) = capsys.readouterr().err.splitlines()
    assert check(line)


async def test_engine_wait_counts_an_outside_engine_call() -> None:
    ctx = context.new_context("beam")
    with context.bound(ctx), context.engine_wait():
        await asyncio.sleep(0)
    assert ctx.engine_seconds > 0
    with context.engine_wait():  # outside a request: nothing to count against
        pass

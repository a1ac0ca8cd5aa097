"""Deadlines, admission control, drain and the engine watchdog, on the fake engine in process.

The real-engine and real-process versions (a burst, 50 disconnects, SIGTERM under load, a
SIGKILLed engine core) are in tests/integration/test_lifecycle.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.engine.fake import FakeEngine
from service.runtime.engine_lifecycle import EngineState
from tests.api.helpers import (
    CHAT,
    assert_openai_error,
    chat_body,
    client_requests,
    engine_calls,
    make_app,
    serve,
    sse_json,
    until,
)
from tests.servers import serve_in_thread


@pytest.fixture
def gated(fake_engine: FakeEngine) -> FakeEngine:
    fake_engine.gate = asyncio.Event()  # generations wait until the test opens it
    return fake_engine


# ------------------------------------------------------------------------------ deadlines
async def test_a_deadline_in_the_body_gives_504_and_aborts_the_engine_request(
    client: httpx.AsyncClient, gated: FakeEngine
) -> None:
    response = await client.post(CHAT, json=chat_body(timeout=0.2))
    assert_openai_error(response, 504, code="timeout")
    engine_id = gated.requests[-1].request_id
    assert engine_id in gated.aborted
    metrics = (await client.get("/metrics")).text
    assert 'outcome="timeout",status="504"' in metrics


async def test_the_deadline_header_works_like_the_field(
    client: httpx.AsyncClient, gated: FakeEngine
) -> None:
    response = await client.post(CHAT, json=chat_body(), headers={"x-request-timeout": "0.2"})
    assert_openai_error(response, 504, code="timeout")


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
async def test_a_bad_deadline_header_is_a_400(client: httpx.AsyncClient, value: str) -> None:
    response = await client.post(CHAT, json=chat_body(), headers={"x-request-timeout": value})
    assert_openai_error(response, 400, param="x-request-timeout")


async def test_the_server_maximum_caps_a_longer_deadline(gated: FakeEngine) -> None:
    app = make_app(gated, max_request_timeout_seconds=0.2)
    async with serve(app) as client:
        response = await client.post(CHAT, json=chat_body(timeout=3600))
    assert_openai_error(response, 504, code="timeout")


async def test_a_stream_past_its_deadline_ends_with_a_timeout_event(
    client: httpx.AsyncClient, gated: FakeEngine
) -> None:
    response = await client.post(CHAT, json=chat_body(stream=True, timeout=0.2))
    assert response.status_code == 200
    events = sse_json(response.text)
    assert events[-1]["error"]["code"] == "timeout"
    engine_id = gated.requests[-1].request_id
    assert engine_id in gated.aborted


async def test_a_deadline_covers_the_wait_for_admission(gated: FakeEngine) -> None:
    app = make_app(gated, max_inflight_sequences=1, max_queued_sequences=4)
    async with serve(app) as client:
        first = asyncio.create_task(client.post(CHAT, json=chat_body()))
        await until(lambda: engine_calls(gated) == 1, "the first request reached the engine")
        waiting = await client.post(CHAT, json=chat_body(timeout=0.2))
        assert_openai_error(waiting, 504, code="timeout")
        assert engine_calls(gated) == 1  # the first: the queued one never ran
        assert app.state.gateway.admission.queued == 0
        gated.open_gate()
        assert (await first).status_code == 200


# ------------------------------------------------------------------------ admission control
async def test_beyond_the_queue_requests_get_503_at_once_without_engine_work(
    gated: FakeEngine,
) -> None:
    app = make_app(gated, max_inflight_sequences=2, max_queued_sequences=1)
    admission = app.state.gateway.admission
    async with serve(app) as client:
        # n=2 costs both in-flight sequences; the next request waits; the one after is refused.
        first = asyncio.create_task(client.post(CHAT, json=chat_body(n=2)))
        await until(lambda: admission.in_flight == 2, "the n=2 request was admitted")
        second = asyncio.create_task(client.post(CHAT, json=chat_body()))
        await until(lambda: admission.queued == 1, "the second request queued")
        metrics = (await client.get("/metrics")).text
        assert "gateway_queue_depth 1.0" in metrics
        assert "gateway_sequences_in_flight 2.0" in metrics
        refused = await client.post(CHAT, json=chat_body())
        assert_openai_error(refused, 503, code="overloaded")
        assert refused.headers["retry-after"] == "1"
        assert engine_calls(gated) == 1  # the first request only
        gated.open_gate()
        assert (await first).status_code == 200
        assert (await second).status_code == 200
    assert admission.in_flight == 0 and admission.queued == 0


# ---------------------------------------------------------------------------------- drain
async def test_drain_refuses_new_work_and_finishes_admitted_work(
    app: FastAPI, gated: FakeEngine
) -> None:
    state: EngineState = app.state.gateway.engine_state
    async with serve(app) as client:
        admitted = asyncio.create_task(client.post(CHAT, json=chat_body()))
        await until(lambda: app.state.gateway.admission.in_flight == 1, "the request was admitted")
        state.drain()
        ready = await client.get("/ready")
        assert_openai_error(ready, 503, code="draining")
        refused = await client.post(CHAT, json=chat_body())
        assert_openai_error(refused, 503, code="draining")
        assert "retry-after" in refused.headers
        assert not app.state.gateway.admission.idle.is_set()
        gated.open_gate()
        assert (await admitted).status_code == 200
        assert app.state.gateway.admission.idle.is_set()


# ------------------------------------------------------------------------------- watchdog
@asynccontextmanager
async def watched(
    fake_engine: FakeEngine, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, list[str]]]:
    app = make_app(fake_engine, health_check_interval_seconds=0.02, **overrides)
    fatal: list[str] = []
    app.state.gateway.engine_state.on_fatal = lambda: fatal.append("exit")
    async with serve(app) as client:
        yield app, client, fatal


async def test_a_wedged_engine_is_declared_dead_and_in_flight_requests_fail(
    gated: FakeEngine,
) -> None:
    async with watched(gated, engine_stall_seconds=0.2) as (_, client, fatal):
        stuck = asyncio.create_task(client.post(CHAT, json=chat_body()))
        await until(lambda: bool(fatal), "the watchdog saw the engine make no progress")
        assert_openai_error(await stuck, 503, code="engine_dead")
        assert_openai_error(await client.get("/ready"), 503, code="engine_dead")
        assert_openai_error(await client.post(CHAT, json=chat_body()), 503, code="engine_dead")
        assert gated.shut_down
        assert fatal == ["exit"]
        metrics = (await client.get("/metrics")).text
        assert 'outcome="engine_error",status="503"' in metrics


async def test_an_idle_engine_is_not_declared_wedged(fake_engine: FakeEngine) -> None:
    # A stall period long enough that a loaded 2-core machine does not starve the loop for that
    # long while the requests run (at 0.3 s it did, at load average 20).
    async with watched(fake_engine, engine_stall_seconds=1.0) as (_, client, fatal):
        for _ in range(3):
            assert (await client.post(CHAT, json=chat_body())).status_code == 200
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + 3.5  # over three stall periods with no work at all
        await until(lambda: loop.time() > quiet_until, "a few watchdog rounds passed")
        assert fatal == []
        assert (await client.get("/ready")).status_code == 200


class CancelsItsWatchdog(FakeEngine):
    """Cancels the watchdog from inside its health check: the cancel arrives as the check
    finishes, as a shutdown's can (asyncio.wait_for on 3.11 swallowed it: shutdown hung)."""

    cancel_watchdog = False

    async def check_health(self) -> None:
        if self.cancel_watchdog:
            for task in asyncio.all_tasks():
                if task.get_name() == "engine-watchdog":
                    task.cancel()
        await super().check_health()


async def test_a_cancel_arriving_as_a_health_check_finishes_stops_the_watchdog() -> None:
    engine = CancelsItsWatchdog()
    async with watched(engine) as (_, _client, fatal):
        (watchdog,) = [t for t in asyncio.all_tasks() if t.get_name() == "engine-watchdog"]
        engine.cancel_watchdog = True
        await until(watchdog.done, "the watchdog stopped")
        assert watchdog.cancelled()
        assert fatal == []


async def test_a_dead_engine_makes_the_process_exit(fake_engine: FakeEngine) -> None:
    async with watched(fake_engine) as (app, client, fatal):
        fake_engine.healthy = False
        await until(lambda: bool(fatal), "the watchdog saw the engine die")
        assert app.state.gateway.engine_state.failure is not None
        assert_openai_error(await client.post(CHAT, json=chat_body()), 503, code="engine_dead")


# ---------------------------------------------------------------------------- disconnects
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
async def test_a_client_disconnect_aborts_the_engine_request(
    gated: FakeEngine, stream: bool
) -> None:
    app = make_app(gated)
    with serve_in_thread(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            request = asyncio.create_task(http.post(CHAT, json=chat_body(stream=stream)))
            await until(lambda: engine_calls(gated) == 1, "the request reached the engine")
            request.cancel()  # closes the connection mid-request
            await asyncio.gather(request, return_exceptions=True)
        (engine_request,) = client_requests(gated)
        engine_id = engine_request.request_id
        await until(lambda: engine_id in gated.aborted, "the engine request was aborted")
        await until(lambda: app.state.gateway.admission.in_flight == 0, "the permit was released")
        metrics = app.state.gateway.metrics.render().decode()
    assert 'outcome="aborted",status="499"' in metrics


# --------------------------------------------------------------------------- metrics port
async def test_metrics_can_be_scraped_on_a_port_of_their_own(fake_engine: FakeEngine) -> None:
    from tests.processes import free_port

    port = free_port()
    app = make_app(fake_engine, metrics_port=port)
    async with serve(app) as client:
        assert (await client.post(CHAT, json=chat_body())).status_code == 200
        async with httpx.AsyncClient() as scraper:
            scrape = await scraper.get(f"http://127.0.0.1:{port}/metrics")
    assert scrape.status_code == 200
    assert "gateway_queue_depth" in scrape.text
    assert 'gateway_requests_total{endpoint="/v1/chat/completions"' in scrape.text
    assert "process_cpu_seconds_total" in scrape.text  # the process-wide registry too


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/classify", {"text": "hi", "labels": [f"l{i}" for i in range(65)]}, "labels"),
        ("/v1/summarize", {"texts": ["hi"] * 65}, "texts"),
    ],
    ids=["classify", "summarize"],
)
async def test_a_bad_task_request_is_refused_before_admission(
    gated: FakeEngine, path: str, body: dict[str, Any], param: str
) -> None:
    app = make_app(gated, max_inflight_sequences=1, max_queued_sequences=0)
    async with serve(app) as client:
        held = asyncio.create_task(client.post(CHAT, json=chat_body()))
        await until(lambda: app.state.gateway.admission.in_flight == 1, "the server is full")
        # A full server would answer 503; the request's own fault comes first.
        response = await client.post(path, json={"model": "fake-model", **body})
        assert_openai_error(response, 413, param=param)
        gated.open_gate()
        assert (await held).status_code == 200

"""Request ids, the overhead header, outcomes and gateway metrics, on the fake engine."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import Message

from service.app import create_app
from service.config import Settings
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from service.errors import EngineFailureError, EngineUnavailableError, GatewayError
from service.telemetry.metrics import GatewayMetrics
from tests.api.helpers import (
    CHAT,
    COMPLETIONS,
    ENDPOINTS,
    body_for,
    chat_body,
    client_requests,
    http_scope,
    serve,
    sse_json,
)
from tests.conftest import HANG_GUARD
from tests.observability import Scrape, delta

REPLY_TOKENS = len(DEFAULT_REPLY.split())
HEX_ID = re.compile(r"[0-9a-f]{32}")


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(response.text)


class GatewayTimeout(GatewayError):
    """Stands in for the deadline error the reliability work adds (504)."""

    status_code = 504
    code = "timeout"


# --- request ids and headers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("POST", CHAT, chat_body(), 200, id="chat"),
        pytest.param("POST", COMPLETIONS, body_for(COMPLETIONS, stream=True), 200, id="stream"),
        pytest.param("POST", CHAT, chat_body(temperature=5), 400, id="bad-value"),
        pytest.param("POST", CHAT, {**chat_body(), "model": "nope"}, 404, id="unknown-model"),
        pytest.param("GET", "/health", None, 200, id="health"),
        pytest.param("GET", "/metrics", None, 200, id="metrics"),
        pytest.param("GET", "/no/such/route", None, 404, id="unmatched"),
        pytest.param("GET", CHAT, None, 405, id="wrong-method"),
    ],
)
async def test_every_response_echoes_the_request_id(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int
) -> None:
    given = await client.request(method, path, json=body, headers={"x-request-id": "trace-42"})
    made = await client.request(method, path, json=body)
    assert given.status_code == made.status_code == status
    assert given.headers["x-request-id"] == "trace-42"
    assert HEX_ID.fullmatch(made.headers["x-request-id"])


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("has space", id="space"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param('quote"d', id="quote"),
        pytest.param("", id="empty"),
    ],
)
async def test_an_unsafe_client_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get("/health", headers={"x-request-id": bad})
    assert HEX_ID.fullmatch(response.headers["x-request-id"])


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_500_carries_the_request_id(
    settings: Settings, fake_engine: FakeEngine, path: str
) -> None:
    app = create_app(settings, engine_factory=lambda: fake_engine)
    async with serve(app, raise_app_exceptions=False) as client:
        fake_engine.fail_with = RuntimeError("boom")
        response = await client.post(path, json=body_for(path), headers={"x-request-id": "r-500"})
        after = await scrape(client)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "r-500"
    assert after.value("gateway_requests_total", endpoint=path, outcome="engine_error") == 1


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_overhead_header_on_plain_responses_only(
    client: httpx.AsyncClient, path: str
) -> None:
    plain = await client.post(path, json=body_for(path))
    streamed = await client.post(path, json=body_for(path, stream=True))
    assert float(plain.headers["x-gateway-overhead-ms"]) >= 0.0
    assert "x-gateway-overhead-ms" not in streamed.headers
    assert streamed.headers["x-request-id"]


async def test_engine_request_ids_derive_from_the_request_id(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = body_for(COMPLETIONS, prompt=["one two", "three four"])
    for _ in range(2):  # the same client id twice must still give distinct engine ids
        response = await client.post(COMPLETIONS, json=body, headers={"x-request-id": "same"})
        assert response.status_code == 200
    ids = [request.request_id for request in client_requests(fake_engine)]
    assert len(ids) == len(set(ids)) == 4
    pattern = re.compile(r"same-([0-9a-f]{8})-([01])")
    matches = [pattern.fullmatch(i) for i in ids]
    assert all(matches), ids
    nonces = [m.group(1) for m in matches if m]
    assert sorted(m.group(2) for m in matches if m) == ["0", "0", "1", "1"]
    assert len(set(nonces)) == 2  # one per engine call, shared by its prompts


# --- metrics


async def test_metrics_count_a_plain_and_a_streamed_request(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    plain = (await client.post(CHAT, json=chat_body())).json()
    stream = await client.post(
        COMPLETIONS, json=body_for(COMPLETIONS, stream=True, stream_options={"include_usage": True})
    )
    usage = sse_json(stream.text)[-1]["usage"]
    after = await scrape(client)

    def moved(sample: str, **labels: str) -> float:
        return delta(before, after, sample, **labels)

    ok = {"method": "POST", "status": "200", "outcome": "success"}
    assert moved("gateway_requests_total", endpoint=CHAT, **ok) == 1
    assert moved("gateway_requests_total", endpoint=COMPLETIONS, **ok) == 1
    assert moved("gateway_prompt_tokens_total", endpoint=CHAT) == plain["usage"]["prompt_tokens"]
    assert moved("gateway_completion_tokens_total", endpoint=CHAT) == REPLY_TOKENS
    assert moved("gateway_prompt_tokens_total", endpoint=COMPLETIONS) == usage["prompt_tokens"]
    assert moved("gateway_completion_tokens_total", endpoint=COMPLETIONS) == REPLY_TOKENS
    # TTFT once per stream; one inter-token gap between each of the stream's token events.
    assert moved("gateway_time_to_first_token_seconds_count", endpoint=COMPLETIONS) == 1
    assert moved("gateway_time_to_first_token_seconds_count", endpoint=CHAT) == 0
    assert moved("gateway_inter_token_latency_seconds_count", endpoint=COMPLETIONS) == (
        REPLY_TOKENS - 1
    )
    assert moved("gateway_overhead_seconds_count", endpoint=CHAT) == 1
    assert moved("gateway_overhead_seconds_count", endpoint=COMPLETIONS) == 1
    assert moved("gateway_request_duration_seconds_count", endpoint=CHAT) == 1
    assert after.value("gateway_requests_in_flight") == 1  # the scrape itself
    assert moved("gateway_requests_total", endpoint="/metrics", outcome="success") == 1


@pytest.mark.parametrize(
    ("failure", "stream", "status", "outcome"),
    [
        pytest.param(None, False, "200", "success", id="success"),
        pytest.param(EngineUnavailableError("busy"), False, "503", "rejected", id="rejected"),
        pytest.param(GatewayTimeout("late"), False, "504", "timeout", id="timeout"),
        pytest.param(EngineFailureError("bad"), False, "500", "engine_error", id="engine-error"),
        pytest.param(EngineFailureError("bad"), True, "200", "engine_error", id="in-band-error"),
        pytest.param(GatewayTimeout("late"), True, "200", "timeout", id="in-band-timeout"),
    ],
)
async def test_outcome_of_engine_results(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    failure: BaseException | None,
    stream: bool,
    status: str,
    outcome: str,
) -> None:
    fake_engine.fail_with = failure
    before = await scrape(client)
    response = await client.post(CHAT, json=chat_body(stream=stream))
    after = await scrape(client)
    assert str(response.status_code) == status
    labels = {"endpoint": CHAT, "method": "POST", "status": status, "outcome": outcome}
    assert delta(before, after, "gateway_requests_total", **labels) == 1
    assert delta(before, after, "gateway_requests_total", endpoint=CHAT) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "endpoint"),
    [
        pytest.param("POST", CHAT, chat_body(temperature=5), "400", CHAT, id="bad-value"),
        pytest.param("POST", CHAT, {"model": "x"}, "400", CHAT, id="missing-field"),
        pytest.param("GET", "/v1/models/secret-123", None, "404", "unmatched", id="raw-path"),
        pytest.param("DELETE", CHAT, None, "405", CHAT, id="wrong-method"),
    ],
)
async def test_client_errors_are_labelled_by_route_template(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: str, endpoint: str
) -> None:
    before = await scrape(client)
    response = await client.request(method, path, json=body)
    after = await scrape(client)
    assert str(response.status_code) == status
    labels = {"endpoint": endpoint, "method": method, "status": status}
    assert delta(before, after, "gateway_requests_total", **labels, outcome="client_error") == 1
    series = [s.labels for f in after.families.values() for s in f.samples]
    assert not any("secret-123" in value for labels in series for value in labels.values())


async def test_a_client_disconnect_counts_as_aborted(app: FastAPI, fake_engine: FakeEngine) -> None:
    """A stream the client leaves mid-way: status 499, outcome aborted, in-flight back to 0."""
    inbox = [{"type": "http.request", "body": json.dumps(chat_body(stream=True)).encode()}]
    gone = asyncio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        if inbox:
            return inbox.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if b"assistant" in message.get("body", b""):
            gone.set()  # the client leaves right after the role chunk

    scope = http_scope(
        CHAT,
        method="POST",
        headers={"content-type": "application/json", "x-request-id": "leaver"},
    )
    metrics: GatewayMetrics = app.state.gateway.metrics
    async with LifespanManager(
        app, startup_timeout=HANG_GUARD, shutdown_timeout=HANG_GUARD
    ) as manager:
        await app.state.gateway.engine_state.wait_started()
        fake_engine.gate = asyncio.Event()  # never set: the engine produces no token
        await manager.app(scope, receive, send)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as client:
            after = await scrape(client)
    assert dict(sent[0]["headers"])[b"x-request-id"] == b"leaver"
    assert fake_engine.requests[-1].request_id.startswith("leaver-")
    assert fake_engine.requests[-1].request_id in fake_engine.aborted
    labels = {"endpoint": CHAT, "method": "POST", "status": "499", "outcome": "aborted"}
    assert after.value("gateway_requests_total", **labels) == 1
    assert after.value("gateway_completion_tokens_total", endpoint=CHAT) == 0
    assert metrics.registry.get_sample_value("gateway_requests_in_flight") == 0


async def test_each_app_has_its_own_gateway_registry(
    settings: Settings, fake_engine: FakeEngine
) -> None:
    first = create_app(settings, engine_factory=lambda: fake_engine)
    second = create_app(settings, engine_factory=FakeEngine)
    async with serve(first) as one:
        await one.get("/health")
        async with serve(second) as two:
            scraped = await scrape(two)
    assert scraped.value("gateway_requests_total", endpoint="/health") == 0
    # The global registry's collectors are served beside the app's own.
    assert any(name.startswith("process_") for name in scraped.families)

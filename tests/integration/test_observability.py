"""Observability on the real engine: `/metrics` (vLLM's and the gateway's), ids, logs, dashboard.

The engine is shared by the whole session, so counters are compared as deltas around this
test's own requests. The server finishes a request's metrics before it writes the access line,
so the tests wait for that line (an event) before they scrape.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.telemetry.logs import JsonFormatter
from tests.integration.conftest import LiveServer
from tests.observability import AccessLog, Scrape, dashboard_queries, delta, metric_names

pytestmark = pytest.mark.engine

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
SECRET = "Quixotic-Walrus-4471"


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=300) as client:
        yield client


@pytest.fixture
def access_log() -> Iterator[AccessLog]:
    with AccessLog() as log:
        yield log


def scrape(http: httpx.Client) -> Scrape:
    response = http.get("/metrics")
    assert response.status_code == 200
    return Scrape(response.text)


def rid(kind: str) -> str:
    return f"obs-{kind}-{uuid.uuid4().hex[:8]}"


def chat(model: str, content: str, **fields: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": content}]
    return {"model": model, "messages": messages, "temperature": 0, **fields}


def stream_events(response: httpx.Response) -> list[dict[str, Any]]:
    data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


@dataclass
class Traffic:
    """A plain chat, a stream and an error, with the scrapes around them and their access lines."""

    before: Scrape
    after: Scrape
    plain: dict[str, Any]
    events: list[dict[str, Any]]
    logged: dict[str, dict[str, Any]]
    ids: tuple[str, str, str]

    def moved(self, sample: str, **labels: str) -> float:
        return delta(self.before, self.after, sample, **labels)


def send_traffic(http: httpx.Client, model: str, access_log: AccessLog) -> Traffic:
    before = scrape(http)
    assert before.value("gateway_requests_in_flight") == 1  # nothing else in flight: the scrape
    # ignore_eos: both run to max_tokens, so the engine finishes them with reason "length".
    plain_id, stream_id, error_id = rid("plain"), rid("stream"), rid("error")
    plain = http.post(
        CHAT,
        json=chat(model, "Name a colour.", max_tokens=5, ignore_eos=True),
        headers={"x-request-id": plain_id},
    )
    assert plain.status_code == 200, plain.text
    assert plain.headers["x-request-id"] == plain_id
    assert float(plain.headers["x-gateway-overhead-ms"]) >= 0
    body = {"model": model, "prompt": "One, two, three,", "max_tokens": 4, "ignore_eos": True}
    body |= {"temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    with http.stream("POST", COMPLETIONS, json=body, headers={"x-request-id": stream_id}) as r:
        assert r.headers["x-request-id"] == stream_id
        events = stream_events(r)
    error = http.post(CHAT, json=chat("no-such-model", "hi"), headers={"x-request-id": error_id})
    assert error.status_code == 404
    assert error.headers["x-request-id"] == error_id
    logged = {i: access_log.wait(i) for i in (plain_id, stream_id, error_id)}
    ids = (plain_id, stream_id, error_id)
    return Traffic(before, scrape(http), plain.json(), events, logged, ids)


def test_counters_move_by_exactly_the_traffic(
    http: httpx.Client, live_server: LiveServer, access_log: AccessLog
) -> None:
    """A plain chat, a stream and an error, counted on both sides and in the access log."""
    traffic = send_traffic(http, live_server.model, access_log)
    moved = traffic.moved
    usage_plain, usage_stream = traffic.plain["usage"], traffic.events[-1]["usage"]
    token_events = [e for e in traffic.events if e["choices"]]
    assert (usage_plain["completion_tokens"], usage_stream["completion_tokens"]) == (5, 4)
    prompt_tokens = usage_plain["prompt_tokens"] + usage_stream["prompt_tokens"]
    ok = {"method": "POST", "status": "200", "outcome": "success"}
    assert moved("gateway_requests_total", endpoint=CHAT, **ok) == 1
    assert moved("gateway_requests_total", endpoint=COMPLETIONS, **ok) == 1
    assert moved("gateway_requests_total", endpoint=CHAT, status="404", outcome="client_error") == 1
    assert moved("gateway_prompt_tokens_total") == prompt_tokens
    assert moved("gateway_completion_tokens_total", endpoint=CHAT) == 5
    assert moved("gateway_completion_tokens_total", endpoint=COMPLETIONS) == 4
    assert moved("gateway_time_to_first_token_seconds_count", endpoint=COMPLETIONS) == 1
    assert moved("gateway_inter_token_latency_seconds_count") == len(token_events) - 1
    assert moved("gateway_overhead_seconds_count") == 2  # the 404 never reached the engine
    assert traffic.after.value("gateway_requests_in_flight") == 1
    # The engine's own counters, from vLLM's stat loggers, moved by the same traffic.
    assert moved("vllm:request_success_total", finished_reason="length") == 2
    assert moved("vllm:request_success_total") == 2
    assert moved("vllm:prompt_tokens_total") == prompt_tokens
    assert moved("vllm:generation_tokens_total") == 9
    assert moved("vllm:e2e_request_latency_seconds_count") == 2
    assert moved("vllm:time_to_first_token_seconds_count") == 2
    # The access lines agree, and carry the engine's own timings (vLLM's request stats).
    plain_id, stream_id, error_id = traffic.ids
    assert traffic.logged[plain_id]["completion_tokens"] == 5
    assert traffic.logged[plain_id]["engine_queue_ms"] >= 0
    assert traffic.logged[stream_id]["ttft_ms"] > 0
    assert traffic.logged[error_id]["outcome"] == "client_error"


def test_a_client_leaving_mid_stream_is_counted_as_aborted(
    http: httpx.Client, live_server: LiveServer, access_log: AccessLog
) -> None:
    """Counted as aborted, with the tokens it did receive."""
    model = live_server.model
    plain = http.post(CHAT, json=chat(model, "Name a colour.", max_tokens=1))
    prompt_tokens = plain.json()["usage"]["prompt_tokens"]
    after = scrape(http)
    abort_id = rid("abort")
    long = chat(model, "Name a colour.", max_tokens=400, ignore_eos=True, stream=True)
    with http.stream("POST", CHAT, json=long, headers={"x-request-id": abort_id}) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break  # the first token arrived: leave
    aborted = access_log.wait(abort_id)
    final = scrape(http)
    assert (aborted["status"], aborted["outcome"]) == (499, "aborted")
    assert 1 <= aborted["completion_tokens"] < 400
    assert aborted["prompt_tokens"] == prompt_tokens
    labels = {"endpoint": CHAT, "method": "POST", "status": "499", "outcome": "aborted"}
    assert delta(after, final, "gateway_requests_total", **labels) == 1
    assert delta(after, final, "gateway_requests_total", endpoint=CHAT) == 1
    assert (
        delta(after, final, "gateway_completion_tokens_total", endpoint=CHAT)
        == (aborted["completion_tokens"])
    )
    assert final.value("gateway_requests_in_flight") == 1
    # Both registries on one page: the engine's families and the gateway's.
    families = set(final.families)
    assert {"vllm:num_requests_running", "vllm:kv_cache_usage_perc"} <= families
    assert {"gateway_requests", "gateway_request_duration_seconds"} <= families


def test_every_dashboard_metric_is_exposed(http: httpx.Client, live_server: LiveServer) -> None:
    body = {"model": live_server.model, "prompt": "Hello", "max_tokens": 3, "stream": True}
    with http.stream("POST", COMPLETIONS, json=body) as response:
        stream_events(response)
    exposed = scrape(http).names()
    wanted = {name for query in dashboard_queries() for name in metric_names(query)}
    assert any(name.startswith("vllm:") for name in wanted)
    assert any(name.startswith("gateway_") for name in wanted)
    assert wanted <= exposed, sorted(wanted - exposed)


def test_request_id_round_trips_into_the_log_record(
    http: httpx.Client, live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    request_id = rid("roundtrip")
    with AccessLog() as access_log:
        response = http.post(
            CHAT,
            json=chat(live_server.model, "Hi", max_tokens=2),
            headers={"x-request-id": request_id},
        )
        access_log.wait(request_id)
    assert response.headers["x-request-id"] == request_id
    (record,) = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert record.name == "service.access"
    line = json.loads(JsonFormatter().format(record))
    assert (line["request_id"], line["status"], line["endpoint"]) == (request_id, 200, CHAT)


def test_no_prompt_or_output_text_in_logs_by_default(
    http: httpx.Client, live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vllm_logger = logging.getLogger("vllm")  # vLLM's own logs do not propagate: watch them too
    vllm_logger.addHandler(caplog.handler)
    ids = [rid("private") for _ in range(3)]
    content = f"Repeat after me: {SECRET}"
    try:
        with AccessLog() as access_log:
            plain = http.post(
                CHAT,
                json=chat(live_server.model, content, max_tokens=12),
                headers={"x-request-id": ids[0]},
            )
            streamed = chat(live_server.model, content, max_tokens=12, stream=True)
            with http.stream("POST", CHAT, json=streamed, headers={"x-request-id": ids[1]}) as r:
                stream_events(r)
            too_long = chat(live_server.model, f"{SECRET} " * 600, max_tokens=8)
            refused = http.post(CHAT, json=too_long, headers={"x-request-id": ids[2]})
            for request_id in ids:
                access_log.wait(request_id)
    finally:
        vllm_logger.removeHandler(caplog.handler)
    assert plain.status_code == 200
    assert refused.status_code == 400
    reply = plain.json()["choices"][0]["message"]["content"].strip()
    assert reply
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert all(request_id in logged for request_id in ids)
    assert SECRET not in logged
    assert "Quixotic" not in logged
    assert reply not in logged

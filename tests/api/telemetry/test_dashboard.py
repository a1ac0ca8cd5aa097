"""The Grafana dashboard: its shape, and the gateway series its queries use (fake engine).

The `vllm:` half of the check needs the real engine: tests/integration/test_observability.py.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import CHAT, COMPLETIONS, body_for, chat_body
from tests.observability import Scrape, all_panels, dashboard, dashboard_queries, metric_names


def test_dashboard_uses_a_prometheus_datasource_variable() -> None:
    model = dashboard()
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    drawn = [p for p in all_panels(model["panels"]) if p["type"] != "row"]
    assert drawn
    for panel in drawn:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in all_panels(model["panels"])]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("title", "needs"),
    [
        pytest.param("Request rate by outcome", {"gateway_requests_total"}, id="rate"),
        pytest.param("Error ratio", {"gateway_requests_total"}, id="errors"),
        pytest.param(
            "Time to first token (streams)",
            {
                "gateway_time_to_first_token_seconds_bucket",
                "vllm:time_to_first_token_seconds_bucket",
            },
            id="ttft",
        ),
        pytest.param(
            "Inter-token latency (streams)",
            {
                "gateway_inter_token_latency_seconds_bucket",
                "vllm:inter_token_latency_seconds_bucket",
            },
            id="itl",
        ),
        pytest.param(
            "End-to-end latency (successful requests)",
            {"gateway_request_duration_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket"},
            id="e2e",
        ),
        pytest.param("Tokens per second", {"vllm:generation_tokens_total"}, id="tokens"),
        pytest.param(
            "Queue depth", {"vllm:num_requests_running", "vllm:num_requests_waiting"}, id="queue"
        ),
        pytest.param("KV-cache usage", {"vllm:kv_cache_usage_perc"}, id="kv-cache"),
        pytest.param("Request rate by model", {"gateway_requests_total"}, id="by-model"),
        pytest.param(
            "Prompt tokens per second by model", {"gateway_prompt_tokens_total"}, id="tokens-model"
        ),
        pytest.param(
            "Gateway overhead (total minus engine time)",
            {"gateway_overhead_seconds_bucket"},
            id="overhead",
        ),
    ],
)
def test_the_panels_the_issue_asks_for(title: str, needs: set[str]) -> None:
    found = [p for p in all_panels(dashboard()["panels"]) if p["title"] == title]
    assert found, title
    used = {name for p in found for t in p["targets"] for name in metric_names(t["expr"])}
    assert needs <= used


def test_every_query_names_a_metric() -> None:
    queries = dashboard_queries()
    assert len(queries) > 20
    for expr in queries:
        names = metric_names(expr)
        assert names, expr
        assert all(n.startswith(("gateway_", "vllm:")) for n in names), expr


async def test_gateway_series_of_the_dashboard_exist(client: httpx.AsyncClient) -> None:
    await client.post(CHAT, json=chat_body())
    await client.post(COMPLETIONS, json=body_for(COMPLETIONS, stream=True))
    scrape = Scrape((await client.get("/metrics")).text)
    wanted = {n for q in dashboard_queries() for n in metric_names(q) if n.startswith("gateway_")}
    assert wanted
    assert wanted <= scrape.names(), wanted - scrape.names()
    # A series the dashboard does not use must not pass by accident: the check can fail.
    assert "gateway_no_such_metric_total" not in scrape.names()

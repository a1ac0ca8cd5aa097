"""/metrics shows the gateway's families without `*_created`, and vLLM's as vLLM emits them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, Counter
from prometheus_client.parser import text_string_to_metric_families

from service.telemetry.metrics import GatewayMetrics


@pytest.fixture
def engine_counter() -> Iterator[Counter]:
    """A counter in the process-wide registry, where vLLM keeps its `vllm:` families."""
    counter = Counter("vllm:test_exposition_requests", "stands in for a vLLM counter")
    counter.inc()
    yield counter
    REGISTRY.unregister(counter)


def sample_names(body: bytes) -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_gateway_families_have_no_created_series(engine_counter: Counter) -> None:
    metrics = GatewayMetrics()
    metrics.count_request("/v1/chat/completions", "POST", 200, "success", 0.25)
    names = sample_names(metrics.render())
    assert "gateway_requests_total" in names
    assert "gateway_request_duration_seconds_count" in names
    assert not {n for n in names if n.startswith("gateway_") and n.endswith("_created")}
    # The engine's own families are left alone: prometheus_client's switch is process-wide.
    assert "vllm:test_exposition_requests_created" in names


def test_the_registry_itself_still_holds_the_created_samples() -> None:
    """Only the exposition filters; the families (and their timestamps) are unchanged."""
    metrics = GatewayMetrics()
    metrics.count_request("/v1/completions", "POST", 200, "success", 0.1)
    collected = {s.name for family in metrics.registry.collect() for s in family.samples}
    assert "gateway_requests_created" in collected

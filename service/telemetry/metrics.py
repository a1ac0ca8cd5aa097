"""Every gateway metric, defined once, in a registry that belongs to one app.

`/metrics` serves two registries in Prometheus' text format: prometheus_client's global
`REGISTRY`, where vLLM's stat loggers keep their `vllm:*` families (and the process and Python
collectors live), and the app's own registry with the `gateway_*` families below. Tests build many
apps in one process, so gateway metrics cannot live in the global registry; vLLM's are process
wide by vLLM's own design (one engine per process).

Labels are bounded: `endpoint` is the route template (`/v1/chat/completions`), never the raw path;
`method` is one of the HTTP methods or OTHER; `status` is the numeric status; `outcome` is one of
`OUTCOMES`; `model` is the served model a request named once it was found to be served (the base
model, a loaded LoRA adapter, the embedding model), else `other` (no model, an unknown one), so
its values are bounded by the names an operator loads. Prompts, ids and users never become
labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    start_http_server,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from service.caller import Caller
from service.errors import OUTCOMES, Outcome, outcome_for
from service.telemetry import context

__all__ = ["OUTCOMES", "GatewayMetrics", "Outcome", "key_label", "outcome_for"]


CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED = "unmatched"  # the endpoint label of a request no route matched
OTHER_MODEL = "other"  # the model label of a request that named no served model
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# vLLM's default bucket edges (vllm/v1/metrics/buckets.py), so a gateway histogram and its engine
# twin are read on the same edges; request latency adds sub-300 ms edges for fast answers.
REQUEST_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
    30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
# 30 s is max_queue_wait_seconds' default: the count above it is what a perfect estimate refuses.
ADMISSION_WAIT_BUCKETS = tuple(sorted((*TTFT_BUCKETS, 30.0)))
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
)  # fmt: skip
OVERHEAD_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EndpointMetrics:
    """The per-endpoint children, resolved once: `labels()` takes a lock and validates."""

    overhead: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter
    ttft: Histogram
    itl: Histogram


@dataclass(frozen=True, slots=True)
class KeyMetrics:
    """One key's children, resolved once (`GatewayMetrics.key`)."""

    admission_wait: Histogram
    requests: Counter
    input_tokens: Counter
    output_tokens: Counter


ANONYMOUS_KEY = "anonymous"  # the `key` label of every request while authentication is off


def key_label(caller: Caller) -> str:
    """The `key` label of a caller: its key's name, else its id; `anonymous` without a key."""
    return caller.key_name or caller.key_id or ANONYMOUS_KEY


class GatewayMetrics:
    """The gateway's metric families; one instance per app (`GatewayState.metrics`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.exposed = exposed_registry(self.registry)  # what /metrics shows of it
        # Resolved children (bounded like the labels): a dict read per request instead of
        # prometheus_client's validated, locked lookup.
        self._request_children: dict[tuple[str, str, int, str, str], tuple[Counter, Histogram]] = {}
        self._endpoint_children: dict[tuple[str, str], EndpointMetrics] = {}
        self._key_children: dict[str, KeyMetrics] = {}
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "HTTP requests by route template, method, status code, outcome and model.",
            ["endpoint", "method", "status", "outcome", "model"],
            registry=r,
        )
        self.in_flight = Gauge(
            "gateway_requests_in_flight", "HTTP requests being served right now.", registry=r
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth",
            "Engine sequences waiting for admission in the gateway (scale out on this).",
            registry=r,
        )
        self.sequences = Gauge(
            "gateway_sequences_in_flight",
            "Engine sequences admitted and not yet finished (bounded by max_inflight_sequences).",
            registry=r,
        )
        self.ratelimit_backend_errors = Counter(
            "gateway_ratelimit_backend_errors",
            "Requests whose shared rate limits could not be checked or charged (Redis did not "
            "answer); redis_failure decided them.",
            registry=r,
        )
        self.queue_wait = Gauge(
            "gateway_queue_wait_seconds",
            "Estimated wait for admission of a request arriving now: the sequences ahead of it "
            "over the queue's measured drain rate (0 with room, or before a rate is measured).",
            registry=r,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from a request's arrival to its last byte, as the gateway measures it.",
            ["endpoint", "outcome", "model"],
            buckets=REQUEST_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gateway_time_to_first_token_seconds",
            "Streams: time from the request's arrival to its first token event.",
            ["endpoint", "model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "gateway_inter_token_latency_seconds",
            "Streams: time between successive token events, as the client receives them.",
            ["endpoint", "model"],
            buckets=ITL_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "The gateway's own time per request that reached the engine: total minus engine time.",
            ["endpoint"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "gateway_prompt_tokens",
            "Prompt tokens sent to the engine (embedding inputs too).",
            ["endpoint", "model"],
            registry=r,
        )
        self.completion_tokens = Counter(
            "gateway_completion_tokens",
            "Tokens generated for clients (streams count what was produced before an abort).",
            ["endpoint", "model"],
            registry=r,
        )
        # Task API (/v1/classify, /v1/summarize): recorded through `record_classification` and
        # `record_summary` below.
        self.classify_labels = Counter(
            "gateway_classify_labels_chosen",
            "Labels chosen by /v1/classify: by preset and label; custom label sets count as "
            "preset=custom, label=custom.",
            ["preset", "label"],
            registry=r,
        )
        self.summarize_chunks = Histogram(
            "gateway_summarize_chunks",
            "Chunks one /v1/summarize input was split into (1 = it fit the context).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.summarize_depth = Histogram(
            "gateway_summarize_map_reduce_depth",
            "Rounds of map-reduce one /v1/summarize input needed (0 = a single pass).",
            buckets=(0, 1, 2, 3, 4, 6, 8),
            registry=r,
        )
        # Tenants (docs/tenants.md). `key` is the API key's name (its id when it has none), or
        # `anonymous` with authentication off: bounded by the keys, never a client address.
        self.admission_wait = Histogram(
            "gateway_admission_wait_seconds",
            "Time a request waited for admission in the gateway (0: admitted at once), by key.",
            ["key"],
            buckets=ADMISSION_WAIT_BUCKETS,
            registry=r,
        )
        self.key_requests = Counter(
            "gateway_key_requests",
            "Requests that reached the engine, by key.",
            ["key"],
            registry=r,
        )
        self.key_tokens = Counter(
            "gateway_key_tokens",
            "Tokens by key and kind (input: prompt; output: completion), as budgets count them.",
            ["key", "kind"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "gateway_budget_refusals",
            "Requests refused with 429 budget_exceeded, by key and window (day or month).",
            ["key", "window"],
            registry=r,
        )
        # Tool calls returned by /v1/chat/completions and /v1/responses (`record_tool_calls`):
        # parsed = JSON arguments that validate against the tool's schema; invalid = the rest.
        self.tool_calls = Counter(
            "gateway_tool_calls",
            "Tool calls returned to clients, by parse outcome (parsed or invalid).",
            ["outcome"],
            registry=r,
        )

        # The Batch API (service/batches): lines counted by the replica that ran or settled
        # them; the store-wide gauges are refreshed by each replica's drainer (any one of them
        # tells the whole store: aggregate with max, not sum).
        self.batch_lines = Counter(
            "gateway_batch_lines",
            "Batch lines by outcome on this replica: succeeded, failed (an error response, "
            "or not run: revoked key, too many attempts), retried (a transient refusal: 429, "
            "503, 504), discarded (a second run of a line that already had its result), "
            "expired, cancelled.",
            ["outcome"],
            registry=r,
        )
        self.batches = Gauge(
            "gateway_batches",
            "Batches in the store by status (the whole store, as this replica last read it).",
            ["status"],
            registry=r,
        )
        self.batch_lines_waiting = Gauge(
            "gateway_batch_lines_waiting",
            "Lines of batches in progress not yet run (the whole store's backlog).",
            registry=r,
        )
        self.batch_lines_running = Gauge(
            "gateway_batch_lines_running",
            "Batch lines this replica has claimed and not yet finished.",
            registry=r,
        )

    def count_request(
        self,
        endpoint: str,
        method: str,
        status: int,
        outcome: Outcome,
        duration: float,
        model: str = OTHER_MODEL,
    ) -> None:
        key = (endpoint, method, status, outcome, model)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(endpoint, method, str(status), outcome, model),
                self.duration.labels(endpoint, outcome, model),
            )
        children[0].inc()
        children[1].observe(duration)

    def endpoint(self, endpoint: str, model: str = OTHER_MODEL) -> EndpointMetrics:
        children = self._endpoint_children.get((endpoint, model))
        if children is None:
            children = self._endpoint_children[(endpoint, model)] = EndpointMetrics(
                self.overhead.labels(endpoint),
                self.prompt_tokens.labels(endpoint, model),
                self.completion_tokens.labels(endpoint, model),
                self.ttft.labels(endpoint, model),
                self.itl.labels(endpoint, model),
            )
        return children

    def key(self, label: str) -> KeyMetrics:
        children = self._key_children.get(label)
        if children is None:
            children = self._key_children[label] = KeyMetrics(
                self.admission_wait.labels(label),
                self.key_requests.labels(label),
                self.key_tokens.labels(label, "input"),
                self.key_tokens.labels(label, "output"),
            )
        return children

    def render(self) -> bytes:
        """Both registries in Prometheus' text format (0.0.4).

        Each family is self-contained in that format and the names are disjoint (`vllm:`,
        `process_`, `python_` vs `gateway_`), so the two expositions concatenate into one.
        """
        return generate_latest(REGISTRY) + generate_latest(self.exposed)


class _WithoutCreated(Collector):
    """The app's own families without their `*_created` samples.

    prometheus_client writes a `_created` timestamp beside every counter and histogram; it is
    clutter for Prometheus (which ignores it in the text format) and doubles the lines of a
    scrape. Its switch (`disable_created_metrics`) is process-wide and would also change
    vLLM's families, so the gateway's are filtered here and vLLM's are left as vLLM emits them.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for family in self._registry.collect():  # fresh objects on every collect
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


def exposed_registry(registry: CollectorRegistry) -> CollectorRegistry:
    exposed = CollectorRegistry(auto_describe=False)
    exposed.register(_WithoutCreated(registry))
    return exposed


class _Both(Collector):
    """vLLM's process-wide families and one app's own, as one collector (the metrics port)."""

    def __init__(self, app_registry: CollectorRegistry) -> None:
        self._app = _WithoutCreated(app_registry)

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        yield from self._app.collect()


def serve_metrics_port(metrics: GatewayMetrics, host: str, port: int) -> Callable[[], None]:
    """Serve /metrics on a port of its own (scrape-only, no API keys); returns its stop."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Both(metrics.registry))
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


def _metrics() -> GatewayMetrics | None:
    ctx = context.current()
    return ctx.metrics if ctx is not None else None


def record_classification(label: str, *, preset: str | None) -> None:
    """Count one classify result. Label values are kept only for presets (a bounded set)."""
    metrics = _metrics()
    if metrics is not None:
        if preset is None:
            preset = label = "custom"
        metrics.classify_labels.labels(preset, label).inc()


def record_summary(*, chunks: int, depth: int) -> None:
    """Observe one summarized input: its chunk count and its map-reduce depth."""
    metrics = _metrics()
    if metrics is not None:
        metrics.summarize_chunks.observe(chunks)
        metrics.summarize_depth.observe(depth)


def record_tool_calls(*, parsed: int, invalid: int) -> None:
    """Count the tool calls one response returned, by whether their arguments validated."""
    metrics = _metrics()
    if metrics is not None:
        if parsed:
            metrics.tool_calls.labels("parsed").inc(parsed)
        if invalid:
            metrics.tool_calls.labels("invalid").inc(invalid)

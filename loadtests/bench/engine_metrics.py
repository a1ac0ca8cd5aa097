"""Where a level's time to first token went, from the servers' own Prometheus histograms.

Both servers run vLLM's stat loggers and show its `vllm:*` families on `/metrics`; the gateway
adds its own. Read before and after a level, the histograms' sums and counts give means over the
level's requests: vLLM's TTFT (from the request reaching the engine client in the API process to
its first token there), its scheduler-queue and prefill times, and the gateway's TTFT (from the
request's arrival at the gateway). The client's mean TTFT minus vLLM's is time spent outside the
engine: parsing, the chat template, admission, and the way back out. vLLM's tokens-per-step
histogram counts the level's engine steps: output tokens over steps is the mean decode batch,
how full the clients kept the engine. The gateway's admission-wait histogram gives the mean wait
in its queue and how many requests waited longer than its default queue-wait bound (30 s): run
once without the bound, that is what a perfect wait estimate would have refused.
"""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ADMISSION_WAIT = "gateway_admission_wait_seconds"
WAIT_BOUND = "30.0"  # the bucket edge at max_queue_wait_seconds' default
OVER_BOUND = ADMISSION_WAIT + ":over_30s"  # (0, observations above the edge)
# histogram -> figure (a mean in ms over the level's requests)
HISTOGRAMS = {
    ADMISSION_WAIT: "admission_wait_mean_ms",
    "vllm:time_to_first_token_seconds": "engine_ttft_mean_ms",
    "vllm:request_queue_time_seconds": "engine_queue_mean_ms",
    "vllm:request_prefill_time_seconds": "engine_prefill_mean_ms",
    "gateway_time_to_first_token_seconds": "server_ttft_mean_ms",
}
STEPS = "vllm:iteration_tokens_total"  # one observation per engine step
Totals = dict[str, tuple[float, float]]  # histogram -> (sum, count), over every label set


async def scrape(client: httpx.AsyncClient, base_url: str) -> Totals | None:
    """The chosen histograms' totals now; None when the server has no readable /metrics."""
    try:
        response = await client.get(base_url + "/metrics")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    totals: Totals = {}
    for family in text_string_to_metric_families(response.text):
        if family.name not in HISTOGRAMS and family.name != STEPS:
            continue
        total, count, within_bound = 0.0, 0.0, 0.0
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_bucket") and sample.labels.get("le") == WAIT_BOUND:
                within_bound += sample.value
        totals[family.name] = (total, count)
        if family.name == ADMISSION_WAIT:
            totals[OVER_BOUND] = (0.0, count - within_bound)
    return totals


def _delta(before: Totals | None, after: Totals | None, name: str) -> tuple[float, float]:
    """A histogram's (sum, count) over the level; (0, 0) where a server lacks it."""
    if before is None or after is None or name not in after:
        return 0.0, 0.0
    earlier = before.get(name, (0.0, 0.0))
    return after[name][0] - earlier[0], after[name][1] - earlier[1]


def level_figures(
    before: Totals | None,
    after: Totals | None,
    *,
    client_ttft_mean_ms: float | None,
    output_tokens: int,
) -> dict[str, Any]:
    """Each histogram's mean over the level (None where a server lacks it), the client's mean
    TTFT minus vLLM's (the time outside the engine), and the mean decode batch."""
    figures: dict[str, Any] = dict.fromkeys(HISTOGRAMS.values())
    for name, figure in HISTOGRAMS.items():
        total, count = _delta(before, after, name)
        if count > 0:
            figures[figure] = round(total / count * 1000, 3)
    over_bound = _delta(before, after, OVER_BOUND)[1]
    figures["admission_waits_over_30s"] = int(over_bound) if OVER_BOUND in (after or {}) else None
    steps = _delta(before, after, STEPS)[1]
    figures["engine_steps"] = int(steps) if steps > 0 else None
    figures["output_tokens_per_step"] = round(output_tokens / steps, 2) if steps > 0 else None
    engine = figures["engine_ttft_mean_ms"]
    figures["ttft_outside_engine_mean_ms"] = (
        None
        if engine is None or client_ttft_mean_ms is None
        else round(client_ttft_mean_ms - engine, 3)
    )
    return figures

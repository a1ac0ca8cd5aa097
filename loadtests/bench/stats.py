"""Per-level figures of one run, and the A/B comparison across runs (ratios, noise floor)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any

from loadtests.bench.driver import LevelRun

# metric -> True when higher is better (throughputs), False for latencies.
METRICS: dict[str, bool] = {
    "request_throughput": True,
    "output_throughput": True,
    "goodput": True,
    "ttft_mean_ms": False,
    "ttft_p50_ms": False,
    "ttft_p99_ms": False,
    "itl_p50_ms": False,
    "itl_p99_ms": False,
    "e2e_p50_ms": False,
    "e2e_p99_ms": False,
    "api_cpu_ms_per_token": False,  # CPU of the server's HTTP/API process per output token
    "engine_cpu_ms_per_token": False,
    # vLLM's own TTFT histogram's mean (request at the engine client -> first token), and the
    # client's mean TTFT minus it: where the time to first token went (engine_metrics.py)
    "engine_ttft_mean_ms": False,
    "ttft_outside_engine_mean_ms": False,
    "output_tokens_per_step": True,  # the mean decode batch: how full the clients kept the engine
}


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0-100), as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def summarize(run: LevelRun, *, slo_ttft_ms: float, slo_tpot_ms: float) -> dict[str, Any]:
    """Requests/s, tokens/s, TTFT/ITL/e2e p50 and p99, goodput under the SLO, errors."""
    ok = [r for r in run.results if r.ok]
    errors = [r for r in run.results if not r.ok]
    duration = run.duration_s if run.duration_s > 0 else float("nan")
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    itls = [gap for r in ok for gap in r.itl]
    e2es = [r.e2e for r in ok]
    tpots = [
        (r.e2e - r.ttft) / (r.output_tokens - 1)
        for r in ok
        if r.ttft is not None and r.output_tokens > 1
    ]
    good = [
        r
        for r in ok
        if r.ttft is not None
        and r.ttft * 1000 <= slo_ttft_ms
        and (r.output_tokens <= 1 or (r.e2e - r.ttft) / (r.output_tokens - 1) * 1000 <= slo_tpot_ms)
    ]
    overheads = [r.overhead_ms for r in ok if r.overhead_ms is not None]
    output_tokens = sum(r.output_tokens for r in ok)
    chunks = sum(r.chunks for r in ok)
    return {
        "requests": len(run.results),
        "completed": len(ok),
        "errors": len(errors),
        "error_samples": sorted({r.error for r in errors})[:3],
        "duration_s": round(run.duration_s, 3),
        "input_tokens": sum(r.prompt_tokens for r in ok),
        "output_tokens": output_tokens,
        "request_throughput": round(len(ok) / duration, 4),
        "output_throughput": round(output_tokens / duration, 3),
        "goodput": round(len(good) / duration, 4),
        "slo_attainment": round(len(good) / len(ok), 4) if ok else 0.0,
        "ttft_mean_ms": _ms(statistics.fmean(ttfts)) if ttfts else None,
        "ttft_p50_ms": _ms(percentile(ttfts, 50)),
        "ttft_p99_ms": _ms(percentile(ttfts, 99)),
        "itl_p50_ms": _ms(percentile(itls, 50)),
        "itl_p99_ms": _ms(percentile(itls, 99)),
        "e2e_p50_ms": _ms(percentile(e2es, 50)),
        "e2e_p99_ms": _ms(percentile(e2es, 99)),
        "tpot_p50_ms": _ms(percentile(tpots, 50)),
        # Above 1 when a server merges tokens that piled up while its stream lagged into one
        # event: fewer, larger events (ITL then grows while TPOT does not).
        "tokens_per_chunk": round(output_tokens / chunks, 3) if chunks else None,
        "gateway_overhead_p50_ms": percentile(overheads, 50),
    }


def _ratio(b: Any, a: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or a <= 0:
        return None
    return b / a


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def compare(runs: list[dict[str, Any]], level_keys: list[str]) -> dict[str, Any]:
    """B/A ratios per pair (median and spread) and the A-vs-A noise floor, per level and metric.

    Runs alternate A, B, A, B, ...; pair i is the i-th A run and the i-th B run. The noise floor
    of a metric is the largest |1 - A_j/A_i| over every two A runs: how far two runs of the very
    same server drift apart on this machine, the resolution of the B/A ratio.
    """
    a_runs = [r for r in runs if r["server"] == "A"]
    b_runs = [r for r in runs if r["server"] == "B"]
    out: dict[str, Any] = {}
    for key in level_keys:
        per_metric: dict[str, Any] = {}
        for metric, higher_better in METRICS.items():
            a_values = [r["levels"][key].get(metric) for r in a_runs]
            b_values = [r["levels"][key].get(metric) for r in b_runs]
            ratios = [
                x
                for a, b in zip(a_values, b_values, strict=False)
                if (x := _ratio(b, a)) is not None
            ]
            a_vs_a = [
                x
                for i, a in enumerate(a_values)
                for later in a_values[i + 1 :]
                if (x := _ratio(later, a)) is not None
            ]
            noise = max((abs(1 - x) for x in a_vs_a), default=None)
            nums_a = [v for v in a_values if isinstance(v, int | float)]
            nums_b = [v for v in b_values if isinstance(v, int | float)]
            per_metric[metric] = {
                "higher_is_better": higher_better,
                "a_median": statistics.median(nums_a) if nums_a else None,
                "b_median": statistics.median(nums_b) if nums_b else None,
                "ratio": _spread(ratios),
                "ratios": [round(x, 4) for x in ratios],
                "noise_floor": None if noise is None else round(noise, 4),
            }
        per_metric["errors"] = {
            "a": sum(r["levels"][key]["errors"] for r in a_runs),
            "b": sum(r["levels"][key]["errors"] for r in b_runs),
        }
        per_metric["preemptions"] = {
            "a": _total(r["levels"][key].get("preemptions") for r in a_runs),
            "b": _total(r["levels"][key].get("preemptions") for r in b_runs),
        }
        # a gateway without a queue-wait bound: the refusals a perfect wait estimate would make
        per_metric["admission_waits_over_30s"] = {
            "a": _total(r["levels"][key].get("admission_waits_over_30s") for r in a_runs),
            "b": _total(r["levels"][key].get("admission_waits_over_30s") for r in b_runs),
        }
        out[key] = per_metric
    return out


def _total(values: Iterable[float | None]) -> float | None:
    """The sum, or None when a run has no figure (a server without vLLM's metrics)."""
    known = list(values)
    return None if not known or any(v is None for v in known) else sum(v for v in known if v)


def verdict(
    comparison: dict[str, Any], *, closed_keys: list[str], resolution: float = 0.05
) -> dict[str, Any]:
    """The issue's targets: throughput >= 0.99x at every concurrency (or within the noise floor
    of 1.0), TTFT p50 overhead <= 5 % (or within the noise floor).

    A check is only `conclusive` when its noise floor is at most `resolution`: on a busy machine
    two runs of the same server differ by more than the effects being looked for, and "within
    the noise" then says nothing.
    """
    throughput: dict[str, Any] = {}
    ttft: dict[str, Any] = {}
    for key, metrics in comparison.items():
        noise_t = metrics["output_throughput"]["noise_floor"] or 0.0
        ratio_t = metrics["output_throughput"]["ratio"]["median"]
        if key in closed_keys:
            throughput[key] = {
                "ratio": ratio_t,
                "noise_floor": noise_t,
                "met": ratio_t is not None and (ratio_t >= 0.99 or ratio_t >= 1 - noise_t),
                "conclusive": noise_t <= resolution,
            }
        noise_f = metrics["ttft_p50_ms"]["noise_floor"] or 0.0
        ratio_f = metrics["ttft_p50_ms"]["ratio"]["median"]
        ttft[key] = {
            "overhead": None if ratio_f is None else round(ratio_f - 1, 4),
            "noise_floor": noise_f,
            "met": ratio_f is not None and (ratio_f <= 1.05 or ratio_f <= 1 + noise_f),
            "conclusive": noise_f <= resolution,
        }
    return {
        "throughput_ge_0.99": throughput,
        "ttft_p50_overhead_le_5pct": ttft,
        "all_met": all(v["met"] for v in (*throughput.values(), *ttft.values())),
        "all_conclusive": all(v["conclusive"] for v in (*throughput.values(), *ttft.values())),
    }

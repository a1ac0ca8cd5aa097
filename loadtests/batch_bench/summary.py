"""The report's summaries: medians and spreads over the pairs, the ratios, the Markdown table."""

from __future__ import annotations

from typing import Any

from loadtests.bench.stats import percentile


def _spread(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    median = percentile(ordered, 50)
    return {
        "median": None if median is None else round(median, 3),
        "min": round(ordered[0], 3) if ordered else None,
        "max": round(ordered[-1], 3) if ordered else None,
    }


def latency_summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pair, TTFT with the batch over TTFT alone; and the alone runs' own spread (noise)."""
    summary: dict[str, Any] = {}
    for q in ("p50", "p99"):
        key = f"ttft_{q}_ms"
        alone = [p["alone"][key] for p in pairs if p["alone"][key]]
        beside = [p["with_batch"][key] for p in pairs if p["with_batch"][key]]
        ratios = [b / a for a, b in zip(alone, beside, strict=False)]
        summary[key] = {"alone": _spread(alone), "with_batch": _spread(beside)}
        summary[f"ttft_{q}_ratio"] = _spread(ratios)
        if len(alone) > 1:  # A-vs-A: how far two runs of the same load land apart
            summary[f"ttft_{q}_noise"] = round(max(alone) / min(alone) - 1, 3)
    return summary


def throughput_summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    batch = [p["batch"]["output_tokens_per_s"] for p in pairs]
    direct = [p["direct"]["output_tokens_per_s"] for p in pairs]
    return {
        "batch_tokens_per_s": _spread(batch),
        "direct_tokens_per_s": _spread(direct),
        "ratio": _spread([b / d for b, d in zip(batch, direct, strict=True) if d]),
    }


def summary(report: dict[str, Any]) -> str:
    r, o = report["results"], report["options"]
    lat, thr = r["latency"], r["throughput"]

    def cell(spread: dict[str, Any]) -> str:
        return f"{spread['median']} ({spread['min']}-{spread['max']})"

    rows = [
        f"{o['pairs']} pairs each; median (min-max) over pairs",
        "",
        "| figure | without batch | with batch / by batch | ratio | noise (A vs A) | goal |",
        "|---|---|---|---|---|---|",
        f"| interactive TTFT p50 ms, c={o['clients']} | {cell(lat['ttft_p50_ms']['alone'])} "
        f"| {cell(lat['ttft_p50_ms']['with_batch'])} | {cell(lat['ttft_p50_ratio'])} "
        f"| ±{lat.get('ttft_p50_noise')} | ≤ 1.25 |",
        f"| interactive TTFT p99 ms | {cell(lat['ttft_p99_ms']['alone'])} "
        f"| {cell(lat['ttft_p99_ms']['with_batch'])} | {cell(lat['ttft_p99_ratio'])} "
        f"| ±{lat.get('ttft_p99_noise')} | |",
        f"| output tok/s, {o['throughput_lines']} lines, in flight "
        f"{r['throughput_pairs'][0]['direct']['concurrency']} "
        f"| {cell(thr['direct_tokens_per_s'])} (requests) "
        f"| {cell(thr['batch_tokens_per_s'])} (batch) | {cell(thr['ratio'])} | | ≥ 0.9 |",
    ]
    return "\n".join(rows)

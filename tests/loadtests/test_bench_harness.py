"""The A/B benchmark harness end to end, in its quick mode, with the gateway on the fake engine
standing in for both servers: it starts and stops two subprocesses, drives them, and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from loadtests.bench import engine_metrics
from loadtests.bench.config import from_args
from loadtests.bench.driver import Level, LevelRun, Result, build_levels
from loadtests.bench.run import workload_digest
from loadtests.bench.stats import compare, percentile, summarize
from service.schemas.chat import ChatCompletionRequest
from service.telemetry.metrics import ADMISSION_WAIT_BUCKETS

ROOT = Path(__file__).resolve().parents[2]
FAKE = "{python} -m service --engine fake --model demo --port {port}"
# The fake engine's context is 256 whitespace tokens: short prompts of every kind.
PROMPTS = [
    {"kind": "question", "text": "What is the capital of France?"},
    {"kind": "instruction", "text": "Write two lines about the sea, please."},
    {"kind": "review", "text": "Great phone, the battery lasts two days.", "label": "positive"},
    {"kind": "passage", "text": "The council met on Tuesday to discuss the old depot."},
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("bench")
    prompts = folder / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    out = folder / "out"
    args = [
        *("--quick", "--concurrency", "1,4", "--rates", "200", "--requests-per-rate", "6"),
        *("--server-a-cmd", FAKE, "--server-a-ready", "/ready", "--server-a-name", "fake-a"),
        *("--server-b-cmd", FAKE, "--server-b-ready", "/ready", "--server-b-name", "fake-b"),
        *("--model-name", "demo", "--prompts", str(prompts), "--out", str(out)),
        *("--ready-timeout", "60", "--level-timeout", "60", "--request-timeout", "30"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads((out / "report.json").read_text())
    result["_out"] = str(out)
    return result


def test_runs_alternate_a_and_b_for_three_pairs(report: dict[str, Any]) -> None:
    assert [r["server"] for r in report["runs"]] == ["A", "B"] * 3
    assert [r["pair"] for r in report["runs"]] == [0, 0, 1, 1, 2, 2]
    assert report["conditions"]["layout"] == "resident"
    assert {s["name"] for s in report["servers"].values()} == {"fake-a", "fake-b"}


def test_every_level_completed_without_errors(report: dict[str, Any]) -> None:
    levels = {lv["key"]: lv for lv in report["workload"]["levels"]}
    assert list(levels) == ["c=1", "c=4", "rate=200/s"]
    for run in report["runs"]:
        assert list(run["levels"]) == list(levels)
        for key, figures in run["levels"].items():
            assert figures["errors"] == 0, figures["error_samples"]
            assert figures["completed"] == levels[key]["requests"] > 0
            assert figures["output_throughput"] > 0
            assert figures["ttft_p50_ms"] > 0
            assert figures["ttft_p50_ms"] <= figures["e2e_p99_ms"]
            assert figures["api_cpu_s"] >= 0 and figures["engine_cpu_s"] >= 0
            assert figures["tokens_per_chunk"] >= 1
            # the fake engine has no vLLM histograms; the gateway's own TTFT one is there
            assert figures["engine_ttft_mean_ms"] is None
            assert figures["output_tokens_per_step"] is None
            assert figures["server_ttft_mean_ms"] > 0
            assert figures["preemptions"] is None  # the fake engine has no vLLM metrics
            if levels[key]["ignore_eos"]:  # fixed output: usage counts every requested token
                assert figures["output_tokens"] == figures["completed"] * 32


def test_each_run_records_the_servers_summed_memory(report: dict[str, Any]) -> None:
    for run in report["runs"]:
        for moment in ("memory_after_warmup", "memory_after_run"):
            figures = run[moment]
            # A gateway on the fake engine is one Python process of some tens of MiB.
            assert 0.01 < figures["api_gib"] == figures["total_gib"] < 2, figures
            assert figures["engine_gib"] == 0
    summary = (Path(report["_out"]) / "summary.md").read_text()
    assert "| A: fake-a |" in summary and "summed PSS after warm-up" in summary


def test_the_kv_cache_size_is_the_same_bytes_for_both_servers() -> None:
    whole = from_args(["--cpu-kvcache-gib", "2"]).engine
    assert whole.environment() == {"VLLM_CPU_KVCACHE_SPACE": "2"}
    assert "--kv-cache-memory-bytes" not in whole.vllm_args()
    assert "--cpu-kvcache-space 2 " in whole.gateway_args() + " "
    part = from_args(["--cpu-kvcache-gib", "0.5"]).engine
    assert part.environment() == {}  # the variable takes whole GiB, and would override the flag
    assert f"--kv-cache-memory-bytes {2**29}" in part.vllm_args()
    assert "--cpu-kvcache-space 0.5" in part.gateway_args()


def test_ratios_and_noise_floor_are_computed(report: dict[str, Any]) -> None:
    for key, metrics in report["comparison"].items():
        for name in ("output_throughput", "request_throughput", "ttft_p50_ms", "e2e_p99_ms"):
            figures = metrics[name]
            assert len(figures["ratios"]) == 3, (key, name)
            assert figures["ratio"]["min"] <= figures["ratio"]["median"] <= figures["ratio"]["max"]
            assert figures["ratio"]["median"] > 0
            assert figures["noise_floor"] >= 0
        assert metrics["errors"] == {"a": 0, "b": 0}
        assert metrics["preemptions"] == {"a": None, "b": None}
    assert set(report["verdict"]["throughput_ge_0.99"]) == {"c=1", "c=4"}
    assert isinstance(report["verdict"]["all_met"], bool)


def test_machine_and_artifacts_are_written(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert machine["logical_cpus"] >= 1
    assert machine["cpu"]["model"]
    assert machine["dtype"] == "float32"
    out = Path(report["_out"])
    assert (out / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert "| c=4 |" in (out / "summary.md").read_text()
    assert (out / "server-A-resident.log").is_file()


def test_workload_is_seeded_and_identical_for_both_servers() -> None:
    config = from_args(["--quick"])
    first, second = build_levels(config), build_levels(config)
    assert workload_digest(first) == workload_digest(second)
    other = build_levels(from_args(["--quick", "--seed", "1"]))
    assert workload_digest(other) != workload_digest(first)
    for level in first:
        for body in level.bodies:
            request = ChatCompletionRequest.model_validate_json(body)
            assert request.stream and request.stream_options is not None
            assert request.stream_options.include_usage
            assert request.ignore_eos is (level.phase == "closed")


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)


def test_summary_counts_goodput_against_the_slo() -> None:
    fast = Result(ok=True, start=0.0, end=1.0, ttft=0.1, itl=[0.1] * 9, chunks=10, output_tokens=10)
    slow = Result(ok=True, start=0.0, end=5.0, ttft=3.0, itl=[0.2] * 4, chunks=5, output_tokens=10)
    failed = Result(error="HTTP 500")
    figures = summarize(
        LevelRun([fast, slow, failed], duration_s=2.0), slo_ttft_ms=2000, slo_tpot_ms=150
    )
    assert (figures["completed"], figures["errors"]) == (2, 1)
    assert figures["goodput"] == 0.5
    assert figures["output_throughput"] == 10.0
    assert figures["tokens_per_chunk"] == pytest.approx(20 / 15, abs=1e-3)


def test_compare_gives_b_over_a_and_the_a_vs_a_spread() -> None:
    def run(server: str, tokens_per_s: float) -> dict[str, Any]:
        figures = {"errors": 0, "output_throughput": tokens_per_s}
        return {"server": server, "levels": {"c=1": figures}}

    runs = [run("A", 100), run("B", 99), run("A", 110), run("B", 100), run("A", 100)]
    result = compare(runs, ["c=1"])["c=1"]
    assert result["output_throughput"]["ratios"] == [0.99, pytest.approx(0.9091, abs=1e-4)]
    assert result["output_throughput"]["noise_floor"] == pytest.approx(0.1)
    assert result["ttft_p50_ms"]["ratio"]["median"] is None  # absent metric: no ratio


def test_level_keys() -> None:
    assert Level("closed", 16, ()).key == "c=16"
    assert Level("poisson", 0.5, ()).key == "rate=0.5/s"


VLLM_METRICS = """\
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 12.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 12.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 3.0
# HELP vllm:request_queue_time_seconds Histogram of time spent in WAITING phase for request.
# TYPE vllm:request_queue_time_seconds histogram
vllm:request_queue_time_seconds_bucket{engine="0",le="+Inf",model_name="m"} 12.0
vllm:request_queue_time_seconds_count{engine="0",model_name="m"} 12.0
vllm:request_queue_time_seconds_sum{engine="0",model_name="m"} 0.6
# HELP vllm:iteration_tokens_total Histogram of number of tokens per engine_step.
# TYPE vllm:iteration_tokens_total histogram
vllm:iteration_tokens_total_bucket{engine="0",le="+Inf",model_name="m"} 40.0
vllm:iteration_tokens_total_count{engine="0",model_name="m"} 40.0
vllm:iteration_tokens_total_sum{engine="0",model_name="m"} 400.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
"""


async def test_engine_histograms_give_a_levels_ttft_split() -> None:
    def metrics(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/metrics"
        return httpx.Response(200, text=VLLM_METRICS)

    async with httpx.AsyncClient(transport=httpx.MockTransport(metrics)) as client:
        after = await engine_metrics.scrape(client, "http://server")
    assert after == {
        "vllm:time_to_first_token_seconds": (3.0, 12.0),
        "vllm:request_queue_time_seconds": (0.6, 12.0),
        "vllm:iteration_tokens_total": (400.0, 40.0),
    }
    before = {  # e.g. the warm-up's requests
        "vllm:time_to_first_token_seconds": (1.0, 2.0),
        "vllm:iteration_tokens_total": (16.0, 8.0),
    }
    figures = engine_metrics.level_figures(
        before, after, client_ttft_mean_ms=500.0, output_tokens=320
    )
    assert figures["engine_ttft_mean_ms"] == 200.0  # (3.0 - 1.0) s over 10 requests
    assert figures["engine_queue_mean_ms"] == 50.0
    assert figures["ttft_outside_engine_mean_ms"] == 300.0
    assert figures["engine_prefill_mean_ms"] is None and figures["server_ttft_mean_ms"] is None
    assert (figures["engine_steps"], figures["output_tokens_per_step"]) == (32, 10.0)
    absent = engine_metrics.level_figures(None, after, client_ttft_mean_ms=500.0, output_tokens=1)
    assert absent["engine_ttft_mean_ms"] is None and absent["ttft_outside_engine_mean_ms"] is None
    assert absent["output_tokens_per_step"] is None


async def test_admission_waits_over_the_default_bound_are_counted_per_level() -> None:
    registry = CollectorRegistry()
    wait = Histogram(
        "gateway_admission_wait_seconds",
        "admission wait",
        ["key"],
        buckets=ADMISSION_WAIT_BUCKETS,  # the gateway's own edges, 30 s among them
        registry=registry,
    )

    def metrics(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=generate_latest(registry))

    async with httpx.AsyncClient(transport=httpx.MockTransport(metrics)) as client:
        wait.labels("a").observe(45.0)  # before the level: not counted
        before = await engine_metrics.scrape(client, "http://gateway")
        for seconds in (0.0, 29.9, 30.0, 30.5, 31.0):
            wait.labels("a").observe(seconds)
        wait.labels("b").observe(120.0)
        after = await engine_metrics.scrape(client, "http://gateway")
    figures = engine_metrics.level_figures(before, after, client_ttft_mean_ms=None, output_tokens=0)
    assert figures["admission_waits_over_30s"] == 3  # 30.5, 31 and 120 s, across keys
    assert figures["admission_wait_mean_ms"] == round((0 + 29.9 + 30 + 30.5 + 31 + 120) / 6e-3, 3)
    vllm_only = engine_metrics.level_figures(None, None, client_ttft_mean_ms=None, output_tokens=0)
    assert vllm_only["admission_waits_over_30s"] is None

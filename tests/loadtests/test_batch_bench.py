"""The Batch API benchmark end to end on the fake engine, small: it starts a gateway process,
measures the four phases and writes its report, so the command in docs/benchmarks.md cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE = "{python} -m service --engine fake --model demo --port {port}"


def test_the_batch_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        *("--server-cmd", FAKE, "--model-name", "demo", "--out", str(out)),
        *("--lines", "40", "--throughput-lines", "8", "--interactive-requests", "8"),
        *("--max-tokens", "8", "--pairs", "2"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.batch_bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    results = report["results"]
    assert len(results["latency_pairs"]) == len(results["throughput_pairs"]) == 2
    for pair in results["latency_pairs"]:
        for run in (pair["alone"], pair["with_batch"]):
            assert run["requests"] == 8 and run["errors"] == 0 and run["ttft_p50_ms"] > 0
    for pair in results["throughput_pairs"]:
        assert pair["batch"]["status"] == "completed" and pair["batch"]["lines"] == 8
        assert pair["direct"]["errors"] == 0 and pair["direct"]["concurrency"] == 4
    assert results["latency"]["ttft_p50_ratio"]["median"] > 0
    assert results["throughput"]["ratio"]["median"] > 0
    assert report["load_average_before"] and report["load_average_after"]
    assert "| interactive TTFT p50 ms, c=4 |" in done.stdout

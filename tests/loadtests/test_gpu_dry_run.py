"""`python -m loadtests.gpu --dry-run`: the GPU run's whole course on the CPU engine (CI's quick
form), end to end: vLLM's own server and the gateway on the real engine, one pair of tiny levels,
the test step, and every output the GPU run writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests.gpu.profiles import DRY_RUN

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gpu-dry-run")
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.gpu", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "-> ok" in done.stdout
    run: dict[str, Any] = json.loads((out / "run.json").read_text())
    return out, run


def test_every_check_passed(dry_run: tuple[Path, dict[str, Any]]) -> None:
    _, run = dry_run
    assert run["ok"] is True
    assert run["checks"] == {
        "benchmark_ran": True,
        "no_request_errors": True,
        "same_model_runner": True,
        "tests_passed": True,
    }
    assert run["profile"] == "cpu-dry-run" and run["environment_set"] == {}


def test_both_servers_ran_the_v1_runner_on_cpu(dry_run: tuple[Path, dict[str, Any]]) -> None:
    out, run = dry_run
    # This CPU build has no Triton backend: V1 for vLLM's server, and for the gateway, which
    # also registers its n-gram processor here (auto is on on CPU) and says so in its log.
    assert run["model_runner"] == {"A": "V1", "B": "V1"}
    gateway_log = (out / "server-B-resident.log").read_text()
    assert "vLLM model runner: V1 (no_repeat_ngram auto: on)" in gateway_log


def test_the_benchmark_ran_one_pair_with_the_same_engine_settings(
    dry_run: tuple[Path, dict[str, Any]],
) -> None:
    out, run = dry_run
    report = json.loads((out / "report.json").read_text())
    assert [r["server"] for r in report["runs"]] == ["A", "B"]
    assert [lv["key"] for lv in report["workload"]["levels"]] == ["c=1", "c=2"]
    for result in report["runs"]:
        for figures in result["levels"].values():
            assert figures["errors"] == 0 and figures["completed"] == 2
            assert figures["output_tokens"] == 2 * DRY_RUN.output_len
    assert report["config"]["engine"]["dtype"] == "float32"
    a, b = (report["servers"][label]["command_line"] for label in "AB")
    assert "vllm.entrypoints.openai.api_server" in a and " -m service " in b
    for flags in ("--dtype float32", "--max-model-len 2048", "--max-num-seqs 8"):
        assert flags in a and flags in b
    assert "--enforce-eager" in a and "--enforce-eager true" in b
    assert set(run["bench"]["levels"]) == {"c=1", "c=2"}


def test_results_chart_tests_and_machine_are_written(dry_run: tuple[Path, dict[str, Any]]) -> None:
    out, run = dry_run
    assert (out / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert "| c=2 |" in (out / "summary.md").read_text()
    machine = json.loads((out / "machine.json").read_text())
    assert machine["platform"] == "cpu" and machine["gpu"] is None
    assert machine["vllm"] and machine["torch"] and machine["cpu"]["model"]
    assert machine["dtype"] == "float32"
    tests = run["tests"]
    assert tests["returncode"] == 0 and tests["tests"] > 0 and tests["failed"] == []
    assert (out / "tests.xml").is_file()

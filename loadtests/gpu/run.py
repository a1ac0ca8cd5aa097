"""The GPU run's course: the A/B benchmark, then the test step, then what both found.

Outputs in one folder: the benchmark's `report.json`, `summary.md`, `chart.png` and server logs;
`machine.json`; the test step's `tests.xml` (JUnit) and `tests.log`; and `run.json`, the run's
own summary with its checks (no request failed, both servers chose the same model runner, the
tests passed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.bench import report as out
from loadtests.bench.config import GATEWAY, VLLM_SERVER, BenchConfig, ServerSpec
from loadtests.bench.run import benchmark
from loadtests.gpu import describe
from loadtests.gpu.profiles import RunProfile

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


def bench_config(
    profile: RunProfile, out_dir: Path, *, model_dir: str | None, note: str
) -> BenchConfig:
    return BenchConfig(
        server_a=ServerSpec("A", "vllm-openai-server", VLLM_SERVER, "/health"),
        server_b=ServerSpec("B", "gateway", GATEWAY, "/ready"),
        model_dir=model_dir,
        engine=profile.engine,
        pairs=profile.pairs,
        concurrency=profile.concurrency,
        requests_per_user=profile.requests_per_user,
        min_requests=profile.min_requests,
        output_len=profile.output_len,
        rates=(),
        warmup_requests=profile.warmup_requests,
        ready_timeout_s=profile.ready_timeout_s,
        level_timeout_s=profile.level_timeout_s,
        request_timeout_s=profile.level_timeout_s,
        out_dir=out_dir,
        note=note,
    )


def bench_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures per level: medians of A and B and the B/A ratio."""
    levels = {}
    for key, m in report["comparison"].items():
        levels[key] = {
            name: {
                "a": m[name]["a_median"],
                "b": m[name]["b_median"],
                "b_over_a": m[name]["ratio"]["median"],
            }
            for name in ("output_throughput", "ttft_p50_ms", "itl_p50_ms", "e2e_p99_ms")
        }
        levels[key]["errors"] = m["errors"]
    return {"levels": levels, "verdict": report["verdict"], "duration_s": report["duration_s"]}


def junit_counts(path: Path) -> dict[str, Any]:
    """Totals of a pytest JUnit file, and the ids of the tests that failed."""
    if not path.is_file():
        return {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "failed": []}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors")}
    totals["skipped"] = sum(int(s.get("skipped", 0)) for s in suites)
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {**totals, "failed": failed}


def run_tests(profile: RunProfile, out_dir: Path, *, timeout_s: float) -> dict[str, Any]:
    """pytest in its own process group (the lifecycle tests start servers of their own), so a
    time-out stops all of it."""
    xml, log_path = out_dir / "tests.xml", out_dir / "tests.log"
    command = [
        sys.executable,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit2"),
        *profile.tests,
        f"--junitxml={xml}",
    ]
    began = time.monotonic()
    logger.info("tests: %s (at most %.0f s)", " ".join(command[1:]), timeout_s)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode: int | None = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            returncode = None
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return {
        "command": command[1:],
        "returncode": returncode,
        "timed_out": returncode is None,
        "duration_s": round(time.monotonic() - began, 1),
        **junit_counts(xml),
    }


def gpu_run(
    profile: RunProfile,
    *,
    out_dir: Path,
    model_dir: str | None = None,
    budget_s: float = 570.0,
    skip_tests: bool = False,
    note: str = "",
) -> dict[str, Any]:
    """The whole run; `budget_s` bounds it (what the benchmark leaves is the tests' time)."""
    began = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "schema": 1,
        "profile": profile.name,
        "platform": profile.platform,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment_set": describe.prepare_environment(profile.platform),
        "engine": {
            "vllm_server": profile.engine.vllm_args(),
            "gateway": profile.engine.gateway_args(),
        },
    }
    out.write_json(out_dir / "machine.json", describe.machine(profile))
    config = bench_config(profile, out_dir, model_dir=model_dir, note=note or profile.name)
    try:
        result["bench"] = bench_summary(asyncio.run(benchmark(config)))
    except Exception as err:  # e.g. a server that did not start: recorded; the tests still run
        logger.exception("the benchmark failed")
        result["bench"] = {"error": f"{type(err).__name__}: {err}"}
    result["model_runner"] = describe.runners(out_dir)
    left = budget_s - (time.monotonic() - began)
    if skip_tests:
        result["tests"] = {"skipped_by": "--skip-tests"}
    elif left < 30:
        result["tests"] = {"skipped_by": f"budget: {left:.0f} s left of {budget_s:.0f}"}
    else:
        result["tests"] = run_tests(profile, out_dir, timeout_s=left)
    result["checks"] = checks(result, tests_wanted=not skip_tests)
    result["ok"] = all(result["checks"].values())
    result["duration_s"] = round(time.monotonic() - began, 1)
    out.write_json(out_dir / "run.json", result)
    return result


def checks(result: dict[str, Any], *, tests_wanted: bool) -> dict[str, bool]:
    bench, runner, tests = result["bench"], result["model_runner"], result["tests"]
    found = {
        "benchmark_ran": "error" not in bench,
        "no_request_errors": "error" not in bench
        and all(lv["errors"] == {"a": 0, "b": 0} for lv in bench["levels"].values()),
        # The gateway keeps vLLM's default runner: the one vLLM's own server chose.
        "same_model_runner": runner["A"] is not None and runner["A"] == runner["B"],
    }
    if tests_wanted:
        found["tests_passed"] = tests.get("returncode") == 0
    return found

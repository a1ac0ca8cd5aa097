"""`python -m loadtests.gpu --help`"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path

from loadtests.bench.config import RESULTS_DIR
from loadtests.bench.report import gpus
from loadtests.gpu import describe
from loadtests.gpu.profiles import CUDA, DRY_RUN
from loadtests.gpu.run import gpu_run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.gpu",
        description="The GPU run: the A/B benchmark (vLLM's OpenAI server against the gateway, "
        "bf16, CUDA graphs, concurrency 1/16/64/256, two pairs), then the real-engine "
        "integration tests, within --budget seconds.",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="the same course on the CPU engine: float32, eager, tiny levels, one pair",
    )
    p.add_argument("--out", type=Path, help="results folder (default: loadtests/results/...)")
    p.add_argument("--model-dir", help="model folder (default: the gateway's prepared model)")
    p.add_argument("--budget", type=float, default=570.0, help="seconds for the whole run")
    p.add_argument("--skip-tests", action="store_true", help="the benchmark only")
    p.add_argument("--note", default="", help="conditions to record with the figures")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    profile = DRY_RUN if args.dry_run else CUDA
    if profile.platform == "cuda" and gpus() is None:
        print("no NVIDIA GPU found (nvidia-smi); --dry-run is the CPU form", file=sys.stderr)
        return 2
    missing = describe.missing_modules(profile)
    if args.skip_tests:
        missing.pop("tests", None)
    if missing:
        print(
            f"missing here: {json.dumps(missing)}; on an offline machine carry them "
            "(loadtests/gpu/carry-test.txt, docs/benchmarks.md)",
            file=sys.stderr,
        )
        return 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or RESULTS_DIR / f"{stamp}-{profile.name}"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    result = gpu_run(
        profile,
        out_dir=out_dir,
        model_dir=args.model_dir,
        budget_s=args.budget,
        skip_tests=args.skip_tests,
        note=args.note,
    )
    summary = out_dir / "summary.md"
    if summary.is_file():
        print(summary.read_text())
    print(f"model runner: {result['model_runner']}, tests: {_tests_line(result['tests'])}")
    print(f"checks: {result['checks']} -> {'ok' if result['ok'] else 'FAILED'}")
    print(f"results: {out_dir} (run.json, report.json, chart.png, machine.json)")
    return 0 if result["ok"] else 1


def _tests_line(tests: dict[str, object]) -> str:
    if "skipped_by" in tests:
        return f"not run ({tests['skipped_by']})"
    return (
        f"{tests['tests']} run, {tests['failures']} failed, {tests['errors']} errors, "
        f"{tests['skipped']} skipped in {tests['duration_s']} s"
    )


if __name__ == "__main__":
    sys.exit(main())

"""`python -m loadtests.bench --help`"""

from __future__ import annotations

import asyncio
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from loadtests.bench.config import from_args
    from loadtests.bench.run import benchmark

    config = from_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request
    try:
        report = asyncio.run(benchmark(config))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    print((config.out_dir / "summary.md").read_text())
    print(f"report: {config.out_dir}/report.json, chart: {config.out_dir}/chart.png")
    verdict = report["verdict"]
    print(
        f"targets met: {verdict['all_met']}"
        + ("" if verdict["all_conclusive"] else " (inconclusive: noise floor above 5 %)")
    )
    errors = sum(lv["errors"] for run in report["runs"] for lv in run["levels"].values())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m loadtests.batch_bench`: parse the options, start the gateway, measure, report."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import loadtests.batch_bench
from loadtests.batch_bench.phases import GATEWAY, Options, measure
from loadtests.batch_bench.summary import summary
from loadtests.bench.config import RESULTS_DIR, EngineProfile, ServerSpec
from loadtests.bench.report import loadavg, machine, write_json
from loadtests.bench.servers import ManagedServer


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.batch_bench", description=loadtests.batch_bench.__doc__
    )
    parser.add_argument("--quick", action="store_true", help="smaller: a few minutes")
    parser.add_argument("--lines", type=int, default=1000, help="the batch drained beside")
    parser.add_argument("--throughput-lines", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=32, help="of every line and request")
    parser.add_argument("--clients", type=int, default=4, help="interactive clients")
    parser.add_argument("--interactive-requests", type=int, default=32, help="per run")
    parser.add_argument("--pairs", type=int, default=4, help="rounds of each comparison")
    parser.add_argument("--max-num-seqs", type=int, default=8)
    parser.add_argument("--fraction", type=float, default=0.5, help="batch_max_inflight_fraction")
    parser.add_argument("--server-cmd", default=GATEWAY, help="the gateway's command template")
    parser.add_argument("--model-name", default="smollm2-135m-instruct")
    parser.add_argument("--model-dir", default=None, help="default: the prepared model")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.throughput_lines, args.interactive_requests = 200, 16, 16
        args.pairs = 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    command = args.server_cmd + f" --batch-max-inflight-fraction {args.fraction}"
    return Options(
        lines=args.lines,
        throughput_lines=args.throughput_lines,
        max_tokens=args.max_tokens,
        clients=args.clients,
        interactive_requests=args.interactive_requests,
        pairs=args.pairs,
        fraction=args.fraction,
        engine=EngineProfile(max_num_seqs=args.max_num_seqs),
        command=command,
        model_name=args.model_name,
        model_dir=args.model_dir or _prepared_model(command),
        out=args.out or RESULTS_DIR / f"batch-{stamp}",
    )


def _prepared_model(command: str) -> str:
    if "{model_dir}" not in command:
        return ""
    from service.config import Settings
    from service.weights import resolve_model

    return str(resolve_model(Settings()))


async def run(opts: Options) -> dict[str, Any]:
    opts.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": machine(),
        "load_average_before": loadavg(),
        "options": asdict(opts) | {"out": str(opts.out)},
        "results": {},
    }

    def save() -> None:
        report["load_average_now"] = loadavg()
        write_json(opts.out / "report.json", report)

    with tempfile.TemporaryDirectory(prefix="batch-bench-") as data:
        os.environ["GATEWAY_DATA_DIR"] = data  # a store of its own
        spec = ServerSpec("B", "gateway", opts.command, "/ready")
        async with ManagedServer(
            spec,
            model_dir=opts.model_dir,
            model_name=opts.model_name,
            log_path=opts.out / "gateway.log",
            ready_timeout_s=900,
            engine=opts.engine,
        ) as server:
            report["command"] = " ".join(server.command)
            await measure(server.base_url, opts, report["results"], save)
    report["load_average_after"] = loadavg()
    save()
    return report


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    opts = parse(argv)
    report = asyncio.run(run(opts))
    print(summary(report))
    print(
        f"\nload average before {report['load_average_before']}, after "
        f"{report['load_average_after']}; {opts.out / 'report.json'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

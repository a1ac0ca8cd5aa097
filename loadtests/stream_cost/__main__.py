"""`python -m loadtests.stream_cost [--levels service,app,server] [--rounds 7] ...`

Prints, per level and case, the CPU microseconds per stream event: the median over rounds and
the min-max, the events a round, and a digest of the streams' bytes with ids and timestamps
masked (equal digests on two trees: the clients received the same bytes). `--json FILE`
writes the rounds too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests.stream_cost import asgi, server, services

LEVELS = ("service", "app", "server")
# What differs between two runs of the same stream: random ids and the creation time.
_VARYING = re.compile(r'"(id|created)":("[a-z.]+-[0-9a-f]+"|[0-9]+)|"id":"[a-z]+_[0-9a-f]+"')


def mask(text: str) -> str:
    return _VARYING.sub("~", text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.stream_cost", description=__doc__)
    parser.add_argument(
        "--levels", default="service,app", help="comma-separated: " + ",".join(LEVELS)
    )
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated case names (default: all; a level skips "
        "the names it has no case for)",
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=256, help="tokens a stream (service, app)")
    parser.add_argument("--streams", type=int, default=8, help="streams a round (service level)")
    parser.add_argument("--requests", type=int, default=64, help="requests a round (app, server)")
    parser.add_argument("--concurrency", type=int, default=16, help="(app, server)")
    parser.add_argument("--json", type=Path, default=None, help="write every round here")
    return parser


def _chosen(names: list[str], wanted: str) -> list[str]:
    if not wanted:
        return names
    return [n for n in wanted.split(",") if n in names]


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    levels = [level for level in args.levels.split(",") if level]
    for level in levels:
        if level not in LEVELS:
            raise SystemExit(f"unknown level {level!r}: one of {', '.join(LEVELS)}")
        if level == "server":
            rows += await _server_rows(args)
            continue
        for case in _chosen(list(_cases(level)), args.cases):
            rounds = [await _round(level, case, args) for _ in range(args.rounds)]
            rows.append(_row(level, case, rounds))
            print(_line(rows[-1]), flush=True)
    return rows


def _cases(level: str) -> dict[str, Any]:
    return services.CASES if level == "service" else asgi.CASES


async def _round(level: str, case: str, args: argparse.Namespace) -> Any:
    if level == "service":
        return await services.measure(
            services.CASES[case], tokens=args.tokens, streams=args.streams, mask=mask
        )
    return await asgi.measure(
        asgi.CASES[case],
        tokens=args.tokens,
        requests=args.requests,
        concurrency=args.concurrency,
        mask=mask,
    )


async def _server_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    with server.fake_server(args.concurrency) as (url, process):
        # Warm-up: imports, first-request paths.
        await server.measure(url, process, "chat", requests=4, concurrency=4, mask=mask)
        for case in _chosen(list(server.PATHS), args.cases):
            rounds = [
                await server.measure(
                    url,
                    process,
                    case,
                    requests=args.requests,
                    concurrency=args.concurrency,
                    mask=mask,
                )
                for _ in range(args.rounds)
            ]
            rows.append(_row("server", case, rounds))
            print(_line(rows[-1]), flush=True)
    return rows


def _row(level: str, case: str, rounds: list[Any]) -> dict[str, Any]:
    per_event = [r.cpu_seconds / r.events * 1e6 for r in rounds]
    digests = sorted({r.digest for r in rounds})
    return {
        "level": level,
        "case": case,
        "us_per_event_median": round(statistics.median(per_event), 2),
        "us_per_event_min": round(min(per_event), 2),
        "us_per_event_max": round(max(per_event), 2),
        "events_per_round": rounds[0].events,
        "digest": ",".join(digests),
        "rounds": [asdict(r) for r in rounds],
    }


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['level']:8} {row['case']:14} {row['us_per_event_median']:8.2f} µs/event "
        f"({row['us_per_event_min']:.2f}-{row['us_per_event_max']:.2f}), "
        f"{row['events_per_round']} events a round, bytes {row['digest']}"
    )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, as uvicorn uses it then."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        rows = runner.run(_run(args))
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

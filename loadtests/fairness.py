"""Fair share, measured: tenant B's time to first token while tenant A floods the gateway.

    python -m loadtests.fairness              # both orders (fair share on, then off), ~10 min
    python -m loadtests.fairness --help       # requests, lengths, the engine profile, ...

It starts the gateway on the prepared default model (the A/B benchmark's engine profile: 8
sequences a step, float32, eager) with two keys, `tenant-a` and `tenant-b`, once with fair share
on and once with it off (`GATEWAY_FAIR_SHARE`). On each:

1. B alone: B sends `--b-requests` streaming chat requests, one after another, on an idle
   gateway; its TTFT is the baseline.
2. B beside A's flood: A keeps `--a-queued` requests waiting beyond the in-flight bound
   (2 x max_num_seqs in flight, so A has that many + `--a-queued` open at all times, each sent
   again as soon as it is answered); once A's queue has formed, B sends the same requests.

The report, `loadtests/results/<timestamp>-fairness/`: `report.json` (the settings, every
TTFT) and `summary.md` (B's median TTFT beside A's flood over B's alone, each order). The
issue's goal: with fair share, B's median within 2x of alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from loadtests import workload
from loadtests.bench.config import GATEWAY, RESULTS_DIR, BenchConfig, EngineProfile, ServerSpec
from loadtests.bench.driver import make_client, send
from loadtests.bench.run import resolve_model_dir
from loadtests.bench.servers import ManagedServer

logger = logging.getLogger("loadtests.fairness")

KEYS = {"tenant-a": "sk-fairness-tenant-a", "tenant-b": "sk-fairness-tenant-b"}
MODEL_NAME = "smollm2-135m-instruct"


@dataclass(frozen=True, slots=True)
class FairnessConfig:
    b_requests: int = 5
    a_queued: int = 40  # A's requests waiting beyond the in-flight bound
    # A's replies: None, the load test's mix (32/64/128/256 tokens, 40/30/20/10 %, seeded), so
    # that A's requests finish at different steps as real traffic does; or a fixed length, as
    # the A/B benchmark's closed loop (its batches then start and finish together).
    a_output_len: int | None = None
    b_output_len: int = 32
    orders: tuple[str, ...] = ("fair", "fcfs")
    engine: EngineProfile = field(default_factory=EngineProfile)
    ready_timeout_s: float = 600.0
    out_dir: Path = field(
        default_factory=lambda: RESULTS_DIR / (time.strftime("%Y%m%d-%H%M%S") + "-fairness")
    )

    @property
    def in_flight(self) -> int:
        return 2 * self.engine.max_num_seqs  # the gateway's default max_inflight_sequences


def _auth(tenant: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


def _bodies(config: FairnessConfig) -> tuple[list[bytes], list[bytes]]:
    prompts = workload.load_prompts()
    rng = random.Random(0)
    a = [
        workload.encode(
            workload.chat_body(
                MODEL_NAME,
                prompts[i % len(prompts)],
                max_tokens=config.a_output_len or workload.output_length(rng),
                stream=True,
                ignore_eos=True,
            )
        )
        for i in range(4 * len(prompts))
    ]
    b = [
        workload.encode(
            workload.chat_body(
                MODEL_NAME,
                prompts[-1 - i],
                max_tokens=config.b_output_len,
                stream=True,
                ignore_eos=True,
            )
        )
        for i in range(config.b_requests)
    ]
    return a, b


async def _b_ttfts(url: str, bodies: list[bytes]) -> list[float]:
    ttfts = []
    async with make_client(600.0) as client:
        for body in bodies:
            result = await send(client, url, body, headers=_auth("tenant-b"))
            if not result.ok or result.ttft is None:
                raise RuntimeError(f"tenant B's request failed: {result.error}")
            ttfts.append(result.ttft)
    return ttfts


async def _queue_depth(base_url: str) -> int:
    async with make_client(30.0) as client:
        return int((await client.get(f"{base_url}/get_load")).json()["queue_depth"])


async def _beside_a_flood(
    config: FairnessConfig, base_url: str, a_bodies: list[bytes], b_bodies: list[bytes]
) -> tuple[list[float], int]:
    """B's TTFTs while A keeps its queue; and how many of A's requests failed."""
    url = f"{base_url}/v1/chat/completions"
    stop = asyncio.Event()
    failed = 0

    async def tenant_a_user(index: int, client: Any) -> None:
        nonlocal failed
        sent = index
        while not stop.is_set():
            result = await send(
                client, url, a_bodies[sent % len(a_bodies)], headers=_auth("tenant-a")
            )
            failed += not result.ok
            sent += config.in_flight + config.a_queued

    async with make_client(1800.0) as client:
        users = [
            asyncio.create_task(tenant_a_user(i, client))
            for i in range(config.in_flight + config.a_queued)
        ]
        give_up = time.monotonic() + config.ready_timeout_s
        while await _queue_depth(base_url) < config.a_queued:
            if time.monotonic() > give_up:
                raise RuntimeError("tenant A's queue never formed")
            await asyncio.sleep(0.2)  # polling the gateway's load report
        try:
            ttfts = await _b_ttfts(url, b_bodies)
        finally:
            stop.set()
            for task in users:
                task.cancel()
            await asyncio.gather(*users, return_exceptions=True)
    return ttfts, failed


async def measure(
    config: FairnessConfig, fair_share: bool, model_dir: str, scratch: Path
) -> dict[str, Any]:
    config.out_dir.mkdir(parents=True, exist_ok=True)
    keys = scratch / "keys.toml"
    keys.write_text("".join(f'[[keys]]\nname = "{n}"\nkey = "{k}"\n' for n, k in KEYS.items()))
    os.environ["GATEWAY_API_KEY_FILE"] = str(keys)
    os.environ["GATEWAY_FAIR_SHARE"] = str(fair_share).lower()
    os.environ["GATEWAY_DATA_DIR"] = str(scratch / f"data-{fair_share}")
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    spec = ServerSpec("B", "gateway", GATEWAY, "/ready")
    label = "fair share" if fair_share else "first come, first served"
    a_bodies, b_bodies = _bodies(config)
    async with ManagedServer(
        spec,
        model_dir=model_dir,
        model_name=MODEL_NAME,
        log_path=config.out_dir / f"gateway-fair-share-{str(fair_share).lower()}.log",
        ready_timeout_s=config.ready_timeout_s,
        engine=config.engine,
    ) as server:
        url = f"{server.base_url}/v1/chat/completions"
        await _b_ttfts(url, b_bodies[:1])  # warm-up
        alone = await _b_ttfts(url, b_bodies)
        logger.info("%s: B alone, TTFT %s", label, [round(t, 3) for t in alone])
        beside, failed = await _beside_a_flood(config, server.base_url, a_bodies, b_bodies)
        logger.info("%s: B beside A, TTFT %s", label, [round(t, 3) for t in beside])
    return {
        "fair_share": fair_share,
        "b_alone_ttft_s": alone,
        "b_beside_a_ttft_s": beside,
        "b_alone_median_s": statistics.median(alone),
        "b_beside_a_median_s": statistics.median(beside),
        "ratio": statistics.median(beside) / statistics.median(alone),
        "a_failed": failed,
        "load_average": [load_before, " ".join(f"{x:.1f}" for x in os.getloadavg())],
    }


def _a_lengths(config: FairnessConfig) -> str:
    if config.a_output_len is None:
        return "32/64/128/256 tokens, 40/30/20/10 %"
    return f"{config.a_output_len} tokens each"


def summary(config: FairnessConfig, runs: list[dict[str, Any]], load: str) -> str:
    lines = [
        f"Tenant B: {config.b_requests} sequential streaming chat requests ({config.b_output_len} "
        f"tokens); tenant A: {config.in_flight} in flight + {config.a_queued} queued "
        f"({_a_lengths(config)}), max_num_seqs {config.engine.max_num_seqs}. "
        f"Load average at the start: {load}.",
        "",
        "| admission | B alone: TTFT p50 | B beside A: TTFT p50 | ratio | B's TTFTs beside A (s) "
        "| load average (1 min) before, after |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        name = "fair share" if run["fair_share"] else "first come, first served"
        beside = ", ".join(f"{t:.2f}" for t in run["b_beside_a_ttft_s"])
        lines.append(
            f"| {name} | {run['b_alone_median_s'] * 1000:.0f} ms | "
            f"{run['b_beside_a_median_s'] * 1000:.0f} ms | {run['ratio']:.1f}x | {beside} | "
            f"{run['load_average'][0].split()[0]}, {run['load_average'][1].split()[0]} |"
        )
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> FairnessConfig:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.fairness", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--b-requests", type=int, default=5)
    parser.add_argument("--a-queued", type=int, default=40)
    parser.add_argument(
        "--a-output-len", type=int, default=None, help="A's reply length (default: a mix)"
    )
    parser.add_argument("--b-output-len", type=int, default=32)
    parser.add_argument("--max-num-seqs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument(
        "--orders",
        nargs="+",
        choices=["fair", "fcfs"],
        default=["fair", "fcfs"],
        help="which admissions to measure: fair share, first come first served",
    )
    args = parser.parse_args(argv)
    config = FairnessConfig(
        b_requests=args.b_requests,
        a_queued=args.a_queued,
        a_output_len=args.a_output_len,
        b_output_len=args.b_output_len,
        engine=EngineProfile(max_num_seqs=args.max_num_seqs),
    )
    if args.out is not None:
        config = replace(config, out_dir=args.out)
    return replace(config, orders=tuple(args.orders))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line a poll
    config = parse(argv)
    model_dir = resolve_model_dir(
        BenchConfig(
            ServerSpec("A", "gateway", GATEWAY, "/ready"),
            ServerSpec("B", "gateway", GATEWAY, "/ready"),
        )
    )
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as scratch:  # the key file, the servers' stores
        runs = [
            asyncio.run(measure(config, order == "fair", model_dir, Path(scratch)))
            for order in config.orders
        ]
    text = summary(config, runs, load)
    (config.out_dir / "summary.md").write_text(text)
    report = {
        "config": {**asdict(config), "out_dir": str(config.out_dir)},
        "load_average": load,
        "runs": runs,
    }
    (config.out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    print(text)


if __name__ == "__main__":
    main()

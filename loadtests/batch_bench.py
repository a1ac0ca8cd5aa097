"""The Batch API's two figures (docs/benchmarks.md), on one gateway process:

1. interactive TTFT p50/p99 at `--clients` (4) concurrent streaming chat clients while a
   `--lines` (1,000) line chat batch drains, against the same load with no batch;
2. the batch's throughput on an idle gateway against the same lines sent as concurrent requests
   at the batch's in-flight bound (`batch_max_inflight_fraction` x `max_num_seqs`).

    .venv/bin/python -m loadtests.batch_bench            # ~15 min on 2 CPU cores
    .venv/bin/python -m loadtests.batch_bench --quick    # a few minutes
    .venv/bin/python -m loadtests.batch_bench --help

Every line and request is a chat completion of `--max-tokens` tokens (`ignore_eos`, greedy),
so all do the same work. The gateway runs the A/B benchmark's engine profile (float32, eager,
2048 context, `max_num_seqs` 8, 1 GiB KV cache) with `scheduling_policy=priority`, a store of
its own in a temporary folder, and a patient watchdog (`engine_stall_seconds` 900: on a
machine loaded by other work a step may take minutes, which is not a dead engine). The report
(`loadtests/results/batch-<time>/report.json`, saved after each phase, and a Markdown table on
stdout) keeps the settings, the machine and its load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from loadtests.bench.config import RESULTS_DIR, EngineProfile, ServerSpec
from loadtests.bench.driver import make_client, send
from loadtests.bench.report import loadavg, machine, write_json
from loadtests.bench.servers import ManagedServer
from loadtests.bench.stats import percentile
from loadtests.workload import load_prompts

logger = logging.getLogger("loadtests.batch_bench")

GATEWAY = (
    "{python} -m service --model {model_dir} --served-model-name {model_name} "
    "{gateway_engine_args} --embedding-model none --scheduling-policy priority "
    "--max-queue-wait-seconds 3600 --engine-stall-seconds 900 --batch-poll-seconds 0.2 "
    "--host 127.0.0.1 --port {port}"
)
FINAL = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True, slots=True)
class Options:
    lines: int
    throughput_lines: int
    max_tokens: int
    clients: int
    interactive_requests: int
    pairs: int
    fraction: float
    engine: EngineProfile
    command: str
    model_name: str
    model_dir: str
    out: Path


def chat_body(model: str, prompt: str, max_tokens: int, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def prompts_cycle(count: int) -> list[str]:
    texts = [p.text for p in load_prompts() if len(p.text) < 400]
    return [texts[i % len(texts)] for i in range(count)]


async def interactive(http: httpx.AsyncClient, base: str, opts: Options) -> dict[str, Any]:
    """`clients` closed-loop streaming clients, `interactive_requests` requests in all."""
    prompts = prompts_cycle(opts.interactive_requests)
    bodies = [
        json.dumps(chat_body(opts.model_name, p, opts.max_tokens, stream=True)).encode()
        for p in prompts
    ]
    results = []

    async def client() -> None:
        while bodies:
            results.append(await send(http, f"{base}/v1/chat/completions", bodies.pop()))

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(opts.clients)))
    ttfts = [r.ttft for r in results if r.ok and r.ttft is not None]
    return {
        "requests": len(results),
        "errors": sum(1 for r in results if not r.ok),
        "seconds": round(time.perf_counter() - began, 2),
        "ttft_p50_ms": _ms(percentile(ttfts, 50)),
        "ttft_p99_ms": _ms(percentile(ttfts, 99)),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def start_batch(http: httpx.AsyncClient, base: str, opts: Options, count: int) -> str:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": chat_body(opts.model_name, p, opts.max_tokens, stream=False),
        }
        for i, p in enumerate(prompts_cycle(count))
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = await http.post(
        f"{base}/v1/files", files={"file": ("in.jsonl", content)}, data={"purpose": "batch"}
    )
    uploaded.raise_for_status()
    created = await http.post(
        f"{base}/v1/batches",
        json={
            "input_file_id": uploaded.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    created.raise_for_status()
    batch_id: str = created.json()["id"]
    return batch_id


async def batch_state(http: httpx.AsyncClient, base: str, batch_id: str) -> dict[str, Any]:
    reply: dict[str, Any] = (await http.get(f"{base}/v1/batches/{batch_id}")).json()
    return reply


async def wait_batch(
    http: httpx.AsyncClient, base: str, batch_id: str, done: Any, guard: float = 3600.0
) -> dict[str, Any]:
    give_up = time.monotonic() + guard
    while True:
        batch = await batch_state(http, base, batch_id)
        if done(batch):
            return batch
        if time.monotonic() > give_up:
            raise TimeoutError(f"batch {batch_id}: {batch['status']} after {guard:.0f} s")
        await asyncio.sleep(0.1)  # polling interval of a bounded wait


async def during_batch(http: httpx.AsyncClient, base: str, opts: Options) -> dict[str, Any]:
    """Interactive load while the big batch drains (it is cancelled afterwards)."""
    batch_id = await start_batch(http, base, opts, opts.lines)
    await wait_batch(
        http, base, batch_id, lambda b: b["request_counts"]["completed"] >= 1, guard=600
    )
    before = (await batch_state(http, base, batch_id))["request_counts"]["completed"]
    measured = await interactive(http, base, opts)
    after = await batch_state(http, base, batch_id)
    measured["batch_lines_done_meanwhile"] = after["request_counts"]["completed"] - before
    measured["batch_still_running"] = after["status"] == "in_progress"
    await http.post(f"{base}/v1/batches/{batch_id}/cancel")
    await wait_batch(http, base, batch_id, lambda b: b["status"] in FINAL)
    return measured


async def batch_throughput(http: httpx.AsyncClient, base: str, opts: Options) -> dict[str, Any]:
    began = time.perf_counter()
    batch_id = await start_batch(http, base, opts, opts.throughput_lines)
    batch = await wait_batch(http, base, batch_id, lambda b: b["status"] in FINAL)
    seconds = time.perf_counter() - began
    tokens = (batch.get("usage") or {}).get("output_tokens", 0)
    return {
        "status": batch["status"],
        "lines": batch["request_counts"]["completed"],
        "seconds": round(seconds, 2),
        "output_tokens_per_s": round(tokens / seconds, 2),
        "lines_per_s": round(batch["request_counts"]["completed"] / seconds, 3),
    }


async def direct_throughput(
    http: httpx.AsyncClient, base: str, opts: Options, concurrency: int
) -> dict[str, Any]:
    """The same lines as plain requests, `concurrency` at a time."""
    bodies = [
        chat_body(opts.model_name, p, opts.max_tokens, stream=False)
        for p in prompts_cycle(opts.throughput_lines)
    ]
    tokens, errors = 0, 0

    async def worker() -> None:
        nonlocal tokens, errors
        while bodies:
            reply = await http.post(f"{base}/v1/chat/completions", json=bodies.pop())
            if reply.status_code == 200:
                tokens += reply.json()["usage"]["completion_tokens"]
            else:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    return {
        "concurrency": concurrency,
        "errors": errors,
        "seconds": round(seconds, 2),
        "output_tokens_per_s": round(tokens / seconds, 2),
        "lines_per_s": round((opts.throughput_lines - errors) / seconds, 3),
    }


async def measure(base: str, opts: Options, results: dict[str, Any], save: Any) -> None:
    """`pairs` rounds of each comparison, its two sides in turn and in the other order every
    other round (A B B A ...), so that a drift in the machine's load falls on both; each saved
    as it ends."""
    inflight = max(1, int(opts.fraction * opts.engine.max_num_seqs))
    latency: list[dict[str, Any]] = []
    throughput: list[dict[str, Any]] = []
    results |= {"latency_pairs": latency, "throughput_pairs": throughput}
    async with make_client(600.0) as http:
        warm = chat_body(opts.model_name, "Hello", 4, stream=False)
        for _ in range(2):
            (await http.post(f"{base}/v1/chat/completions", json=warm)).raise_for_status()
        for pair in range(opts.pairs):  # A B, then B A: a drift in load falls on both sides
            logger.info("pair %d: interactive alone and beside a %d-line batch", pair, opts.lines)
            if pair % 2 == 0:
                alone = await interactive(http, base, opts)
                beside = await during_batch(http, base, opts)
            else:
                beside = await during_batch(http, base, opts)
                alone = await interactive(http, base, opts)
            latency.append({"alone": alone, "with_batch": beside})
            results["latency"] = latency_summary(latency)
            save()
        for pair in range(opts.pairs):
            logger.info("pair %d: %d lines by batch and as requests", pair, opts.throughput_lines)
            if pair % 2 == 0:
                batch = await batch_throughput(http, base, opts)
                direct = await direct_throughput(http, base, opts, inflight)
            else:
                direct = await direct_throughput(http, base, opts, inflight)
                batch = await batch_throughput(http, base, opts)
            throughput.append({"batch": batch, "direct": direct})
            results["throughput"] = throughput_summary(throughput)
            save()


def _spread(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    median = percentile(ordered, 50)
    return {
        "median": None if median is None else round(median, 3),
        "min": round(ordered[0], 3) if ordered else None,
        "max": round(ordered[-1], 3) if ordered else None,
    }


def latency_summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per pair, TTFT with the batch over TTFT alone; and the alone runs' own spread (noise)."""
    summary: dict[str, Any] = {}
    for q in ("p50", "p99"):
        key = f"ttft_{q}_ms"
        alone = [p["alone"][key] for p in pairs if p["alone"][key]]
        beside = [p["with_batch"][key] for p in pairs if p["with_batch"][key]]
        ratios = [b / a for a, b in zip(alone, beside, strict=False)]
        summary[key] = {"alone": _spread(alone), "with_batch": _spread(beside)}
        summary[f"ttft_{q}_ratio"] = _spread(ratios)
        if len(alone) > 1:  # A-vs-A: how far two runs of the same load land apart
            summary[f"ttft_{q}_noise"] = round(max(alone) / min(alone) - 1, 3)
    return summary


def throughput_summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    batch = [p["batch"]["output_tokens_per_s"] for p in pairs]
    direct = [p["direct"]["output_tokens_per_s"] for p in pairs]
    return {
        "batch_tokens_per_s": _spread(batch),
        "direct_tokens_per_s": _spread(direct),
        "ratio": _spread([b / d for b, d in zip(batch, direct, strict=True) if d]),
    }


def summary(report: dict[str, Any]) -> str:
    r, o = report["results"], report["options"]
    lat, thr = r["latency"], r["throughput"]

    def cell(spread: dict[str, Any]) -> str:
        return f"{spread['median']} ({spread['min']}-{spread['max']})"

    rows = [
        f"{o['pairs']} pairs each; median (min-max) over pairs",
        "",
        "| figure | without batch | with batch / by batch | ratio | noise (A vs A) | goal |",
        "|---|---|---|---|---|---|",
        f"| interactive TTFT p50 ms, c={o['clients']} | {cell(lat['ttft_p50_ms']['alone'])} "
        f"| {cell(lat['ttft_p50_ms']['with_batch'])} | {cell(lat['ttft_p50_ratio'])} "
        f"| ±{lat.get('ttft_p50_noise')} | ≤ 1.25 |",
        f"| interactive TTFT p99 ms | {cell(lat['ttft_p99_ms']['alone'])} "
        f"| {cell(lat['ttft_p99_ms']['with_batch'])} | {cell(lat['ttft_p99_ratio'])} "
        f"| ±{lat.get('ttft_p99_noise')} | |",
        f"| output tok/s, {o['throughput_lines']} lines, in flight "
        f"{r['throughput_pairs'][0]['direct']['concurrency']} "
        f"| {cell(thr['direct_tokens_per_s'])} (requests) "
        f"| {cell(thr['batch_tokens_per_s'])} (batch) | {cell(thr['ratio'])} | | ≥ 0.9 |",
    ]
    return "\n".join(rows)


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m loadtests.batch_bench", description=__doc__)
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

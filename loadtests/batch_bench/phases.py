"""The benchmark's phases: interactive streaming clients, a batch drained beside them, and the
same lines by batch and as direct requests; `measure` runs them in alternating pairs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from loadtests.batch_bench.summary import latency_summary, throughput_summary
from loadtests.bench.config import EngineProfile
from loadtests.bench.driver import make_client, send
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

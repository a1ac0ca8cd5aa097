"""vllm-router in front of several `python -m service` replicas, on loopback: a mixed workload
through the router, then where it went (docs/scale-out.md has the figures of a run).

    python -m loadtests.router_run --engine fake --requests 600 --concurrency 16
    python -m loadtests.router_run --engine vllm --requests 60 --concurrency 4 \\
        --server-flag=--max-model-len=2048 --server-flag=--max-num-seqs=8 ...

Chat requests share one of a few system prompts (prefix-aware routing should keep each on one
replica); completions and task requests are spread by the router's policy. Which replica served
a request is read from the replicas' own /metrics (`gateway_requests_total`).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

HOST = "127.0.0.1"
SYSTEMS = [
    "You answer questions for the shipping department of a small furniture company. " * 4,
    "You translate legal contracts between French and German, clause by clause. " * 4,
    "You are a patient maths tutor for twelve-year-olds; explain every step. " * 4,
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    command: list[str], log: Path, ready_url: str, timeout_s: float
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    give_up = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited at start-up; see {log}")
        try:
            if httpx.get(ready_url, timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > give_up:
            raise RuntimeError(f"not ready after {timeout_s} s; see {log}")
        time.sleep(0.5)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def served(base_url: str) -> Counter[str]:
    """Successful requests by endpoint, from a replica's /metrics."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_requests_total" and sample.labels.get("status") == "200":
                counts[sample.labels["endpoint"]] += int(sample.value)
    return counts


def workload(n: int, model: str, max_tokens: int) -> list[tuple[str, dict[str, Any]]]:
    requests: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        kind = i % 5
        if kind in (0, 1):
            system = SYSTEMS[i % len(SYSTEMS)]
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": f"Question {i}?"},
            ]
            requests.append(
                (
                    "/v1/chat/completions",
                    {"model": model, "messages": messages, "max_tokens": max_tokens},
                )
            )
        elif kind == 2:
            requests.append(
                (
                    "/v1/completions",
                    {"model": model, "prompt": f"Story {i}: once", "max_tokens": max_tokens},
                )
            )
        elif kind == 3:
            requests.append(
                (
                    "/v1/generate",
                    {"prompt": f"Write line {i} of a poem", "max_new_tokens": max_tokens},
                )
            )
        else:
            requests.append(("/v1/classify", {"text": f"I liked item {i}", "labels": "sentiment"}))
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--engine", choices=["fake", "vllm"], default="fake")
    parser.add_argument("--policy", default="cache_aware")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--server-flag", action="append", default=[], help="passed to every replica"
    )
    parser.add_argument("--log-dir", type=Path, default=Path("loadtests/results/router"))
    args = parser.parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        replicas = []
        started = time.monotonic()
        for _ in range(args.replicas):
            port = free_port()
            url = f"http://{HOST}:{port}"
            command = [
                sys.executable,
                "-m",
                "service",
                "--port",
                str(port),
                "--engine",
                args.engine,
                *args.server_flag,
            ]
            process = start(command, args.log_dir / f"replica-{port}.log", f"{url}/ready", 900)
            stack.callback(stop, process)
            replicas.append(url)
        router_port = free_port()
        router_url = f"http://{HOST}:{router_port}"
        binary = str(Path(sys.executable).parent / "vllm-router")
        router = [
            binary, f"--host={HOST}", f"--port={router_port}", f"--prometheus-port={free_port()}",
            "--worker-urls", *replicas, f"--policy={args.policy}",
            "--health-check-endpoint=/ready", "--health-check-interval-secs=2",
            "--health-failure-threshold=2", "--cb-failure-threshold=2", "--retry-max-retries=3",
        ]  # fmt: skip
        stack.callback(
            stop, start(router, args.log_dir / "router.log", f"{router_url}/readiness", 60)
        )
        print(
            f"{args.replicas} replicas ({args.engine}) and the router up in "
            f"{time.monotonic() - started:.1f} s"
        )
        model = httpx.get(f"{router_url}/v1/models", timeout=30).json()["data"][0]["id"]
        before = [served(url) for url in replicas]
        jobs = workload(args.requests, model, args.max_tokens)
        with httpx.Client(base_url=router_url, timeout=600) as client:

            def send(job: tuple[str, dict[str, Any]]) -> tuple[str, int, float]:
                t0 = time.perf_counter()
                status = client.post(job[0], json=job[1]).status_code
                return job[0], status, time.perf_counter() - t0

            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                results = list(pool.map(send, jobs))
            wall = time.perf_counter() - t0
        after = [served(url) for url in replicas]
    statuses = Counter(status for _, status, _ in results)
    latencies = sorted(seconds for _, _, seconds in results)
    print(
        f"{len(results)} requests in {wall:.1f} s ({len(results) / wall:.1f}/s); "
        f"statuses {dict(statuses)}"
    )
    print(
        f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms"
    )
    paths = sorted(
        {path for path, _, _ in results} | {"/v1/chat/completions/render", "/v1/completions/render"}
    )
    print("| endpoint | " + " | ".join(f"replica {i + 1}" for i in range(len(replicas))) + " |")
    print("|---|" + "---|" * len(replicas))
    for path in paths:
        cells = [str(a[path] - b[path]) for a, b in zip(after, before, strict=True)]
        print(f"| `{path}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

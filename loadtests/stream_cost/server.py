"""The `server` level: `python -m service --engine fake` under uvicorn on loopback, streamed to
by httpx from this process. The figure is the server process's CPU time over the streams
(its sockets, uvicorn's HTTP, the app), not this client's."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psutil

MODEL = "fake-model"
_MESSAGES = [{"role": "user", "content": "hi"}]
# The fake engine's context is 256 whitespace tokens; its reply is cycled with `ignore_eos`.
MAX_TOKENS = 240

PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fake_server(concurrency: int) -> Iterator[tuple[str, psutil.Process]]:
    """The gateway on the fake engine, in its own process; stopped when the block ends."""
    port = _free_port()
    command = [
        sys.executable,
        *("-m", "service", "--engine", "fake", "--model", MODEL, "--port", str(port)),
        *("--log-level", "warning", "--sse-keepalive-seconds", "600"),
        *("--max-inflight-sequences", str(concurrency), "--max-queued-sequences", "4096"),
        *("--embedding-model", "none", "--max-queue-wait-seconds", "3600"),
    ]
    with tempfile.TemporaryDirectory(prefix="stream-cost-") as data:
        env = {**os.environ, "GATEWAY_DATA_DIR": data}
        process = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process)
            yield url, psutil.Process(process.pid)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready in 120 s")


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass(slots=True)
class Round:
    cpu_seconds: float
    events: int
    digest: str


def _body(case: str) -> dict[str, object]:
    common = {"model": MODEL, "stream": True, "max_tokens": MAX_TOKENS, "ignore_eos": True}
    if case == "chat":
        return {**common, "messages": _MESSAGES}
    return {**common, "prompt": "hi"}


async def measure(
    url: str,
    process: psutil.Process,
    case: str,
    *,
    requests: int,
    concurrency: int,
    mask: Callable[[str], str],
) -> Round:
    body = _body(case)
    texts: list[str] = [""] * requests
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def user() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                async with client.stream("POST", PATHS[case], json=body) as response:
                    response.raise_for_status()
                    texts[i] = "".join([part async for part in response.aiter_text()])

        began = _cpu(process)
        await asyncio.gather(*(user() for _ in range(concurrency)))
        cpu = _cpu(process) - began
    digest = hashlib.sha256()
    for text in texts:
        digest.update(mask(text).encode())
    events = sum(text.count("data: ") for text in texts)
    return Round(cpu, events, digest.hexdigest()[:16])

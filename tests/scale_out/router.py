"""`vllm-router` (the PyPI package's binary) as a real process in front of gateway replicas."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.processes import free_port

ROUTER_BINARY = Path(sys.executable).parent / "vllm-router"
STARTUP_GUARD = 60.0  # seconds: the router starts in well under one


@dataclass
class RouterProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> dict[str, dict[str, Any]]:
        """The router's view of its workers: {url: {"is_healthy": ..., "load": ...}}."""
        listed = httpx.get(f"{self.base_url}/workers", timeout=10).json()["workers"]
        return {worker["url"]: worker for worker in listed}


@contextmanager
def router_process(tmp: Path, worker_urls: list[str], *flags: str) -> Iterator[RouterProcess]:
    """Start the router as docs/scale-out.md sets it up (health checks on /ready every second;
    a replica's circuit opens after 2 failed requests, and 3 tries move a request past it);
    wait until it serves."""
    port = free_port()
    log = tmp / f"router-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(ROUTER_BINARY),
                "--host=127.0.0.1",
                f"--port={port}",
                f"--prometheus-port={free_port()}",
                "--worker-urls",
                *worker_urls,
                "--health-check-endpoint=/ready",
                "--health-check-interval-secs=1",
                "--health-failure-threshold=1",
                "--health-success-threshold=1",
                "--cb-failure-threshold=2",
                "--retry-max-retries=3",
                *flags,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    router = RouterProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        give_up = time.monotonic() + STARTUP_GUARD
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the router exited at start-up:\n{router.log_text()}")
            try:
                if httpx.get(f"{router.base_url}/readiness", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > give_up:
                raise AssertionError(f"the router never became ready:\n{router.log_text()}")
            time.sleep(0.1)  # polling a process that is starting
        yield router
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

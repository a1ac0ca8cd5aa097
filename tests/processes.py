"""`python -m service` as a real process, for the tests that signal or kill a server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.config import TEST_PROFILE

STARTUP_GUARD = 600.0  # seconds: the engine starts in ~40 s; a hang fails here instead


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def profile_flags(*overridden: str) -> list[str]:
    """The test profile as flags, less those the caller passes itself (`--name=value`)."""
    own = {flag.split("=", 1)[0] for flag in overridden}
    flags = []
    for name, value in TEST_PROFILE.items():
        flag = "--" + name.replace("_", "-")
        if flag not in own:
            flags.append(f"{flag}={str(value).lower() if isinstance(value, bool) else value}")
    return flags


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, guard: float = 180.0) -> int:
        return self.process.wait(timeout=guard)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def sample_sum(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        text = httpx.get(f"{self.base_url}/metrics", timeout=30).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, summed over labels: {sample name: value}."""
        text = httpx.get(f"{self.base_url}/metrics", timeout=30).text
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
        return samples


@contextmanager
def server_process(
    tmp: Path, *flags: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """Start `python -m service` on the test profile and wait for /ready; kill it at the end."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "--port",
                str(port),
                "--log-format",
                "text",
                *profile_flags(*flags),
                *flags,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: the engine core goes with it
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        give_up = time.monotonic() + STARTUP_GUARD
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited at start-up:\n{server.log_text()}")
            try:
                if httpx.get(f"{server.base_url}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > give_up:
                raise AssertionError(f"the server never became ready:\n{server.log_text()}")
            time.sleep(0.5)  # polling a process that is loading a model
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)

"""A real `redis-server` (Debian's package, `make install-tools`) on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import free_port

STARTUP_GUARD = 30.0  # seconds: it starts in milliseconds; a broken install fails here


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop it now (a Redis outage); idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(tmp: Path) -> Iterator[RedisServer]:
    """Start redis-server without persistence; stop it when the block ends."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise AssertionError("redis-server is not installed: run `make install-tools`")
    port = free_port()
    log = tmp / f"redis-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = RedisServer(port, process, log)
    try:
        give_up = time.monotonic() + STARTUP_GUARD
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > give_up:
                raise AssertionError(f"redis-server did not start:\n{log.read_text()}")
            time.sleep(0.01)  # polling a process that is starting
        yield server
    finally:
        server.stop()

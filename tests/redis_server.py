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


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    port: int
    tmp: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.tmp / f"redis-{self.port}.log"

    def start(self) -> None:
        """Start it (again, after `stop`: empty) on its port, without persistence."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed: run `make install-tools`")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.tmp)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        give_up = time.monotonic() + STARTUP_GUARD
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > give_up:
                raise AssertionError(f"redis-server did not start:\n{self.log.read_text()}")
            time.sleep(0.01)  # polling a process that is starting

    def stop(self) -> None:
        """Stop it now (a Redis outage); idempotent."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@contextmanager
def redis_server(tmp: Path) -> Iterator[RedisServer]:
    """A redis-server of its own until the block ends."""
    server = RedisServer(free_port(), tmp)
    try:
        server.start()
        yield server
    finally:
        server.stop()

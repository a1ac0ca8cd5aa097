"""A real PostgreSQL (Debian's `postgresql`, `make install-tools`) on a free loopback port.

PostgreSQL refuses to run as root, so as root (CI) the cluster is made and run by the
`postgres` user (`runuser`), in a temporary folder of its own; as anyone else, by that user.
One server serves a test session; each test gets a database of its own (`create_database`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.processes import free_port

STARTUP_GUARD = 60  # seconds: it starts in about one; a broken install fails here
SUPERUSER = "postgres"
# Durability against power cuts is not under test: without fsync the server writes faster. A
# commit still reaches the OS before it returns (no `synchronous_commit=off`), so a server that
# is stopped like a crash (`stop`) comes back with every committed row.
SERVER_OPTIONS = "-c fsync=off -c full_page_writes=off"


def _binary(name: str) -> str:
    """A server binary: Debian keeps them in /usr/lib/postgresql/<version>/bin, off the PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda bin_dir: int(bin_dir.parent.name)
    )
    for bin_dir in reversed(versions):
        if (bin_dir / name).is_file():
            return str(bin_dir / name)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"PostgreSQL's {name} is not installed: run `make install-tools`")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    port: int
    root: Path  # the cluster's folder, owned by the server's user

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = SUPERUSER) -> str:
        """The gateway's `database_url` for one of its databases (trusted on loopback)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        command = _as_server_user([_binary("pg_ctl"), "-D", str(self.data), *args])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise AssertionError(f"pg_ctl {args[-1]} failed: {done.stderr}\n{log}")

    def init(self) -> None:
        command = [_binary("initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust"]
        done = subprocess.run(
            _as_server_user([*command, "--no-sync", "-E", "UTF8"]),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"initdb failed: {done.stderr}")

    def start(self) -> None:
        """Start it (again, after `stop`: with its databases) on its port, waiting until it
        accepts connections; its socket lives in its own folder, not /var/run."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {SERVER_OPTIONS}"
        self._pg_ctl("-o", options, "-l", str(self.log), "-t", str(STARTUP_GUARD), "-w", "start")

    def stop(self) -> None:
        """Stop it now (an outage): connections are cut; idempotent."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-m", "immediate", "-w", "stop")

    async def create_database(self) -> str:
        """A new empty database's name."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        connection = await asyncpg.connect(self.url(), timeout=STARTUP_GUARD)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return name

    async def drop_database(self, name: str) -> None:
        connection = await asyncpg.connect(self.url(), timeout=STARTUP_GUARD)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own, in a temporary folder, until the block ends."""
    root = Path(tempfile.mkdtemp(prefix="gateway-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=SUPERUSER, group=SUPERUSER)
    server = PostgresServer(free_port(), root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)

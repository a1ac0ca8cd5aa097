"""The servers under test: subprocesses in their own process group, on a loopback port, always
stopped (SIGTERM to the whole group, then SIGKILL) however the benchmark ends."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from loadtests.bench.config import EngineProfile, ServerSpec, python

logger = logging.getLogger(__name__)
HOST = "127.0.0.1"  # loopback only: the benchmark never sends traffic anywhere else


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def render(
    template: str, engine: EngineProfile, *, model_dir: str, model_name: str, port: int | str
) -> str:
    """A server's command line from its template (unknown placeholders are an error)."""
    return template.format(
        python=python(),
        port=port,
        model_dir=model_dir,
        model_name=model_name,
        **engine.placeholders(),
    )


class ServerFailed(RuntimeError):
    pass


class ManagedServer:
    """`async with ManagedServer(...) as server:` is a ready server at `server.base_url`."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        model_dir: str,
        model_name: str,
        log_path: Path,
        ready_timeout_s: float,
        engine: EngineProfile | None = None,
    ) -> None:
        self.spec = spec
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.engine = engine or EngineProfile()
        self.command = shlex.split(
            render(
                spec.command,
                self.engine,
                model_dir=model_dir,
                model_name=model_name,
                port=self.port,
            )
        )
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None

    async def __aenter__(self) -> ManagedServer:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def start(self) -> None:
        logger.info(
            "starting %s (%s): %s", self.spec.label, self.spec.name, shlex.join(self.command)
        )
        began = time.monotonic()
        self._spawn()
        await self._wait_ready(began + self.ready_timeout_s)
        self.startup_s = time.monotonic() - began
        logger.info("%s ready in %.1f s at %s", self.spec.label, self.startup_s, self.base_url)

    def _spawn(self) -> None:
        """Popen returns at once (it does not wait for the child), so it is fine in a coroutine."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The profile's KV-cache size, not one left in this shell's environment.
                env={
                    **{k: v for k, v in os.environ.items() if k != "VLLM_CPU_KVCACHE_SPACE"},
                    **self.engine.environment(),
                },
                start_new_session=True,  # its own group: Ctrl-C here reaches us, and we stop it
            )

    async def _wait_ready(self, deadline: float) -> None:
        url = self.base_url + self.spec.ready_path
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise ServerFailed(
                        f"{self.spec.name} exited with {self.process.returncode} before it was "
                        f"ready; see {self.log_path}"
                    )
                try:
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise ServerFailed(
                        f"{self.spec.name} was not ready within {self.ready_timeout_s:.0f} s; "
                        f"see {self.log_path}"
                    )
                await asyncio.sleep(0.5)  # polling interval of a bounded wait

    def _group(self) -> list[int]:
        """The pids of the server's process group (API process first); empty without /proc."""
        if self.process is None:
            return []
        leader = self.process.pid
        members = []
        try:
            entries = [p for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            return []
        for pid in entries:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue  # exited meanwhile
            # After the command: state ppid pgrp ..., counted from state=0.
            if int(fields[2]) == leader:
                members.append(int(pid))
        return sorted(members, key=lambda pid: pid != leader)

    def cpu_seconds(self) -> tuple[float, float] | None:
        """CPU time used so far by the server's main process (the HTTP/API layer) and by the
        rest of its process group (vLLM's engine core and worker); None where /proc is absent.

        Unlike wall-clock figures, CPU time per token barely moves when other work shares the
        machine, so it separates the API layers' costs even on a busy host.
        """
        return self._per_part(_cpu_seconds)

    def memory_bytes(self) -> tuple[float, float] | None:
        """Proportional set size (PSS) of the server's main process and of the rest of its
        group, summed: shared pages count once over the processes that share them, so the sum
        is what the server costs the machine. None where /proc has no smaps_rollup."""
        return self._per_part(_pss_bytes)

    def _per_part(self, read: Callable[[int], float | None]) -> tuple[float, float] | None:
        pids = self._group()
        if not pids or self.process is None:
            return None
        leader, others = 0.0, 0.0
        for pid in pids:
            value = read(pid)
            if value is None:
                if pid == self.process.pid:
                    return None  # the leader is unreadable: no figure rather than a wrong one
                continue  # exited meanwhile
            if pid == self.process.pid:
                leader = value
            else:
                others += value
        return leader, others

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to the group, SIGKILL after `grace_s`; idempotent, safe on any exit path."""
        process, self.process = self.process, None
        if process is None:
            return
        group = process.pid  # start_new_session: the group id is the leader's pid
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            if _wait_group(process, group, wait_s):
                break
        process.poll()
        logger.info("stopped %s (%s)", self.spec.label, self.spec.name)


def _wait_group(process: subprocess.Popen[bytes], group: int, wait_s: float) -> bool:
    """True once the leader has exited and no process of its group is left (bounded)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.1)
    return False


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # utime(12) stime(13), counted from state=0.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pss_bytes(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024.0
    except OSError:
        return None
    return None

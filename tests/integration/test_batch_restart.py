"""A gateway killed (kill -9) while it drains a batch, on the real engine and SQLite: restarted on
the same data directory, it claims the lines its dead self held once their leases have run out,
and the batch completes with every line exactly once (none lost, none twice)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ServerProcess, server_process

pytestmark = pytest.mark.engine

LINES = 12
LONG_FROM = 8  # the last lines (one wave of batch slots) run ten times longer than the first
GUARD = 900.0  # seconds: a stuck batch fails here
FLAGS = ("--batch-lease-seconds=5", "--batch-poll-seconds=0.5")


def request_line(i: int) -> str:
    # The long tail keeps the batch unfinished for many polls after the first lines complete,
    # however slow a poll is on a loaded machine (with equal lines, CI once saw 16 of 16 done).
    tokens = 400 if i >= LONG_FROM else 40
    body = {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "messages": [{"role": "user", "content": f"Count from {i} to {i + tokens}."}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
    }
    line = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
    return json.dumps(line)


def batch_of(server: ServerProcess, batch_id: str) -> dict[str, Any]:
    reply: dict[str, Any] = httpx.get(f"{server.base_url}/v1/batches/{batch_id}", timeout=30).json()
    return reply


def until_batch(server: ServerProcess, batch_id: str, done: Any, what: str) -> dict[str, Any]:
    give_up = time.monotonic() + GUARD
    while True:
        batch = batch_of(server, batch_id)
        if done(batch):
            return batch
        assert time.monotonic() < give_up, f"never happened: {what} ({batch})"
        time.sleep(0.2)  # polling a server process's progress


def test_kill_9_mid_batch_and_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    data = f"--data-dir={tmp_path / 'data'}"
    with server_process(tmp_path, data, *FLAGS) as first:
        content = "\n".join(request_line(i) for i in range(LINES)).encode()
        uploaded = httpx.post(
            f"{first.base_url}/v1/files",
            files={"file": ("in.jsonl", content)},
            data={"purpose": "batch"},
            timeout=60,
        ).json()
        batch_id = httpx.post(
            f"{first.base_url}/v1/batches",
            json={
                "input_file_id": uploaded["id"],
                "endpoint": "/v1/chat/completions",
                "completion_window": "24h",
            },
            timeout=60,
        ).json()["id"]
        midway = until_batch(
            first, batch_id, lambda b: b["request_counts"]["completed"] >= 2, "lines complete"
        )
        os.killpg(first.pid, signal.SIGKILL)  # with lines running on the engine
        first.wait()
    done_before = midway["request_counts"]["completed"]
    assert done_before < LINES
    with server_process(tmp_path, data, *FLAGS) as second:
        batch = until_batch(second, batch_id, lambda b: b["status"] == "completed", "it completes")
        output = httpx.get(
            f"{second.base_url}/v1/files/{batch['output_file_id']}/content", timeout=60
        )
        ran_again = second.sample_sum("gateway_batch_lines_total", outcome="succeeded")
        discarded = second.sample_sum("gateway_batch_lines_total", outcome="discarded")
    assert batch["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    assert batch["error_file_id"] is None
    custom_ids = [json.loads(text)["custom_id"] for text in output.text.splitlines()]
    assert sorted(custom_ids) == sorted(f"r{i}" for i in range(LINES))  # each exactly once
    assert 1 <= ran_again <= LINES - done_before  # the finished lines were not run again
    assert discarded == 0

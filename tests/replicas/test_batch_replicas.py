"""Two real gateway processes (fake engine) on one real PostgreSQL draining one batch: both take
lines, and every line runs exactly once and has exactly one result."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx

from tests.postgres_server import PostgresServer
from tests.processes import ServerProcess, server_process

LINES = 400
GUARD = 300.0  # seconds: a stuck batch fails here


def request_line(i: int) -> str:
    body = {"model": "fake", "messages": [{"role": "user", "content": f"hi {i}"}], "max_tokens": 4}
    return json.dumps(
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


async def test_two_replicas_drain_one_batch_each_line_once(
    tmp_path: Path, postgres: PostgresServer, postgres_url: str
) -> None:
    env = {
        "GATEWAY_DATABASE_URL": postgres_url,
        "GATEWAY_BATCH_POLL_SECONDS": "0.2",
        # One line at a time on each replica (1/8 of the fake engine's 8 slots), so that the
        # batch lasts long enough for both to take part.
        "GATEWAY_BATCH_MAX_INFLIGHT_FRACTION": "0.125",
    }
    with (
        server_process(tmp_path, "--engine", "fake", "--served-model-name", "fake", env=env) as a,
        server_process(tmp_path, "--engine", "fake", "--served-model-name", "fake", env=env) as b,
    ):
        async with httpx.AsyncClient(timeout=60) as http:
            content = "\n".join(request_line(i) for i in range(LINES)).encode()
            uploaded = await http.post(
                f"{a.base_url}/v1/files",
                files={"file": ("in.jsonl", content)},
                data={"purpose": "batch"},
            )
            assert uploaded.status_code == 200, uploaded.text
            created = await http.post(  # through the other replica: one store
                f"{b.base_url}/v1/batches",
                json={
                    "input_file_id": uploaded.json()["id"],
                    "endpoint": "/v1/chat/completions",
                    "completion_window": "24h",
                },
            )
            assert created.status_code == 200, created.text
            batch = await until_done(http, a, created.json()["id"])
            output = await http.get(f"{b.base_url}/v1/files/{batch['output_file_id']}/content")
        ran = [
            replica.sample_sum("gateway_batch_lines_total", outcome="succeeded")
            for replica in (a, b)
        ]
        discarded = [
            replica.sample_sum("gateway_batch_lines_total", outcome="discarded")
            for replica in (a, b)
        ]
    assert batch["status"] == "completed" and batch["error_file_id"] is None
    assert batch["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
    custom_ids = [json.loads(text)["custom_id"] for text in output.text.splitlines()]
    assert sorted(custom_ids) == sorted(f"r{i}" for i in range(LINES))  # each once
    assert sum(ran) == LINES and discarded == [0, 0]  # each ran once
    assert all(count > 0 for count in ran), ran  # both replicas drained it


async def until_done(
    http: httpx.AsyncClient, replica: ServerProcess, batch_id: str
) -> dict[str, object]:
    give_up = time.monotonic() + GUARD
    while True:
        batch: dict[str, object] = (
            await http.get(f"{replica.base_url}/v1/batches/{batch_id}")
        ).json()
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < give_up, f"the batch never ended: {batch}"
        await asyncio.sleep(0.2)  # polling server processes

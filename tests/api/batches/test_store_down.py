"""The Files and Batch APIs while the store's PostgreSQL is down: 503 `store_unavailable`, no
batch or file half-written, and the drainer picks up where it was once the database is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.engine.fake import FakeEngine
from service.errors import StoreUnavailableError
from tests.api.batches.helpers import batch_app, chat_line, jsonl, sdk, serve_with_drainer, submit
from tests.api.helpers import assert_openai_error
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.postgres


async def test_the_store_down_is_503_and_nothing_half_written(
    postgres: PostgresServer, postgres_url: str, fake_engine: FakeEngine, tmp_path: Path
) -> None:
    app = batch_app(
        fake_engine,
        tmp_path,
        database_url=postgres_url,
        database_timeout_seconds=2,
        batch_drain=False,
    )
    async with serve_with_drainer(app) as (http, drainer):
        client = sdk(http)
        running = await submit(client, [chat_line("a"), chat_line("b")])
        uploaded = await client.files.create(
            file=("in.jsonl", jsonl([chat_line("c")])), purpose="batch"
        )
        body = {
            "input_file_id": uploaded.id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        postgres.stop()
        try:
            made = await http.post("/v1/batches", json=body)
            upload = await http.post(
                "/v1/files", files={"file": ("x.jsonl", b"{}")}, data={"purpose": "batch"}
            )
            listed = await http.get("/v1/batches")
            with pytest.raises(StoreUnavailableError):
                await drainer.step()
        finally:
            postgres.start()
        for response in (made, upload, listed):
            assert_openai_error(response, 503, code="store_unavailable")
        assert [b.id for b in (await client.batches.list()).data] == [running.id]
        assert [f.id for f in (await client.files.list()).data] == [
            uploaded.id,
            running.input_file_id,
        ]
        await drainer.step()
        for task in list(drainer.lines.values()):
            await task
        await drainer.housekeeping()
        done = await client.batches.retrieve(running.id)
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.completed == 2

"""The Batch API on the fake engine, through the official openai SDK: a batch of every endpoint
runs to its output file, a line with a bad body gets the endpoint's own 4xx in the error file,
a file with bad structure makes a failed batch naming its lines, lines run at the batch class,
and a batch is its key's only."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import openai
import pytest

from service.app import create_app
from service.batches.accounts import BATCH_PRIORITY
from service.config import Settings
from service.engine.fake import FakeEngine
from service.engine.fake_embeddings import FakeEmbeddingEngine
from tests.api.batches.helpers import (
    CHAT,
    batch_app,
    chat_line,
    finished,
    jsonl,
    line,
    results,
    sdk,
    submit,
)
from tests.api.helpers import KEY, OTHER_KEY, client_requests, engine_calls, serve, until
from tests.conftest import FAKE_MODEL
from tests.observability import Scrape

TEXT = "The council met on Monday. It approved the budget. Work starts in May."

BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    "/v1/completions": {"prompt": "Say hi", "max_tokens": 4},
    "/v1/responses": {"input": "hi", "max_output_tokens": 4},
    "/v1/embeddings": {"input": "red apples"},
    "/v1/generate": {"prompt": "Once upon a time", "max_new_tokens": 4},
    "/v1/summarize": {"text": TEXT, "max_length": 32},
    "/v1/classify": {"text": "I love it", "labels": "sentiment"},
}
OBJECTS = {
    "/v1/chat/completions": "chat.completion",
    "/v1/completions": "text_completion",
    "/v1/responses": "response",
    "/v1/embeddings": "list",
    "/v1/generate": "generate",
    "/v1/summarize": "summarize",
    "/v1/classify": "classify",
}


@pytest.mark.parametrize("endpoint", list(BODIES))
async def test_every_endpoint_runs_by_batch(endpoint: str, tmp_path: Path) -> None:
    settings = Settings(
        model=FAKE_MODEL, embedding_model=FAKE_MODEL, default_max_tokens=8, data_dir=tmp_path
    )
    app = create_app(settings, engine_factory=FakeEngine, embedding_factory=FakeEmbeddingEngine)
    body = {"model": FAKE_MODEL, **BODIES[endpoint]}
    async with serve(app) as http:
        client = sdk(http)
        batch = await submit(
            client, [line("a", body, endpoint), line("b", body, endpoint)], endpoint
        )
        done = await finished(client, batch.id)
        assert done.status == "completed" and done.error_file_id is None
        assert done.request_counts is not None and done.request_counts.completed == 2
        outputs = await results(client, done.output_file_id)
        direct = (await http.post(endpoint, json=body)).json()
    assert set(outputs) == {"a", "b"}
    for output in outputs.values():
        response = output["response"]
        assert output["error"] is None and response["status_code"] == 200
        assert response["body"]["object"] == OBJECTS[endpoint]
        assert set(response["body"]) == set(direct)  # the endpoint's own answer


async def test_the_sdk_flow_with_a_line_the_endpoint_refuses(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    refused = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "x"}], "top_p": 7}
    lines = [chat_line(f"r{i}", f"hello {i}") for i in range(5)]
    lines.insert(2, line("bad", refused))
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        client = sdk(http)
        uploaded = await client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
        batch = await client.batches.create(
            input_file_id=uploaded.id,
            endpoint=CHAT,
            completion_window="24h",
            metadata={"job": "nightly"},
        )
        assert batch.status == "in_progress" and batch.metadata == {"job": "nightly"}
        assert batch.request_counts is not None and batch.request_counts.total == 6
        done = await finished(client, batch.id)
        outputs = await results(client, done.output_file_id)
        errors = await results(client, done.error_file_id)
        direct = await http.post(CHAT, json=refused)
        listed = await client.batches.list(limit=1)
        output_file = await client.files.retrieve(done.output_file_id or "")
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (5, 1)
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    assert done.usage is not None and done.usage.output_tokens > 0
    assert list(outputs) == [f"r{i}" for i in range(5)]  # input order
    assert outputs["r3"]["response"]["body"]["choices"][0]["message"]["content"]
    assert outputs["r0"]["id"].startswith("batch_req_")
    assert list(errors) == ["bad"]
    error = errors["bad"]["response"]
    assert (error["status_code"], error["body"]) == (direct.status_code, direct.json())
    assert [b.id for b in listed.data] == [done.id]
    assert output_file.purpose == "batch_output"


async def test_responses_lines_are_not_stored_and_background_is_refused(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    url = "/v1/responses"
    body = {"model": FAKE_MODEL, "input": "hi", "max_output_tokens": 4}
    lines = [line("kept-nowhere", body, url), line("later", {**body, "background": True}, url)]
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        client = sdk(http)
        done = await finished(client, (await submit(client, lines, url)).id)
        outputs = await results(client, done.output_file_id)
        errors = await results(client, done.error_file_id)
        answered = outputs["kept-nowhere"]["response"]["body"]
        stored = await http.get(f"/v1/responses/{answered['id']}")
    assert answered["object"] == "response" and answered["store"] is False
    assert stored.status_code == 404  # the answer is in the output file only
    refused = errors["later"]["response"]
    assert refused["status_code"] == 400
    assert refused["body"]["error"]["param"] == "background"


async def test_a_file_with_bad_lines_makes_a_failed_batch_naming_them(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    content = b"\n".join(
        [
            json.dumps(chat_line("a")).encode(),
            b"{oops",
            json.dumps(chat_line("a")).encode(),
            json.dumps({**chat_line("c"), "url": "/v1/completions"}).encode(),
            json.dumps(chat_line("d", stream=True)).encode(),
        ]
    )
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        client = sdk(http)
        uploaded = await client.files.create(file=("in.jsonl", content), purpose="batch")
        batch = await client.batches.create(
            input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h"
        )
    assert batch.status == "failed" and batch.failed_at
    assert batch.errors is not None and batch.errors.data is not None
    found = [(e.line, e.code) for e in batch.errors.data]
    assert found == [
        (2, "invalid_json_line"),
        (3, "duplicate_custom_id"),
        (4, "mismatched_endpoint"),
        (5, "streaming_unsupported"),
    ]
    assert engine_calls(fake_engine) == 0


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        pytest.param({"input_file_id": "file-nope"}, 404, "input_file_id", id="unknown-file"),
        pytest.param({"endpoint": "/v1/rerank"}, 400, "endpoint", id="endpoint"),
        pytest.param({"completion_window": "1h"}, 400, "completion_window", id="window"),
        pytest.param(
            {"metadata": {f"k{i}": "v" for i in range(17)}}, 400, "metadata", id="metadata"
        ),
    ],
)
async def test_a_batch_request_the_api_refuses(
    fake_engine: FakeEngine, tmp_path: Path, change: dict[str, Any], status: int, param: str
) -> None:
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        client = sdk(http)
        uploaded = await client.files.create(
            file=("in.jsonl", jsonl([chat_line("a")])), purpose="batch"
        )
        body = {"input_file_id": uploaded.id, "endpoint": CHAT, "completion_window": "24h"}
        response = await http.post("/v1/batches", json={**body, **change})
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


async def test_the_input_must_be_a_batch_file(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        client = sdk(http)
        notes = await client.files.create(
            file=("in.jsonl", jsonl([chat_line("a")])), purpose="user_data"
        )
        with pytest.raises(openai.BadRequestError, match="purpose 'batch'"):
            await client.batches.create(
                input_file_id=notes.id, endpoint=CHAT, completion_window="24h"
            )


async def test_lines_run_at_the_batch_class(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(batch_app(fake_engine, tmp_path, scheduling_policy="priority")) as http:
        client = sdk(http)
        done = await finished(client, (await submit(client, [chat_line("a")])).id)
    assert done.status == "completed"
    priorities = {r.priority for r in client_requests(fake_engine)}
    assert priorities == {BATCH_PRIORITY}


async def test_a_batch_is_its_key_s_only_admins_included(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(
        f'[[keys]]\nname = "team"\nkey = "{KEY}"\n\n'
        f'[[keys]]\nname = "ops"\nkey = "{OTHER_KEY}"\nadmin = true\n'
    )
    app = batch_app(fake_engine, tmp_path, api_key_file=keys)
    async with serve(app) as http:
        mine, admin = sdk(http, KEY), sdk(http, OTHER_KEY)
        batch = await submit(mine, [chat_line("a")])
        for call in (admin.batches.retrieve(batch.id), admin.batches.cancel(batch.id)):
            with pytest.raises(openai.NotFoundError):
                await call
        assert (await admin.batches.list()).data == []
        done = await finished(mine, batch.id)
        with pytest.raises(openai.NotFoundError):
            await admin.files.content(done.output_file_id or "")
        assert (await results(mine, done.output_file_id)).keys() == {"a"}


async def test_cancelling_a_finished_batch_is_a_conflict(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        client = sdk(http)
        done = await finished(client, (await submit(client, [chat_line("a")])).id)
        with pytest.raises(openai.ConflictError):
            await client.batches.cancel(done.id)
        with pytest.raises(openai.NotFoundError):
            await client.batches.cancel("batch_nope")


async def test_batch_events_are_logged_and_counted(
    fake_engine: FakeEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = batch_app(fake_engine, tmp_path)
    with caplog.at_level(logging.INFO, logger="service.access"):
        async with serve(app) as http:
            client = sdk(http)
            done = await finished(client, (await submit(client, [chat_line("a")])).id)
            scrape = Scrape((await http.get("/metrics")).text)
            registry = app.state.gateway.metrics.registry  # the drainer's next look shows it
            await until(
                lambda: registry.get_sample_value("gateway_batches", {"status": "completed"}) == 1,
                "the gauge of batches by status counts it",
            )
    events = [r for r in caplog.records if getattr(r, "fields", {}).get("batch_id") == done.id]
    assert [r.fields["event"] for r in events] == ["batch.created", "batch.completed"]  # type: ignore[attr-defined]
    assert events[-1].fields["completed"] == 1  # type: ignore[attr-defined]
    assert scrape.value("gateway_batch_lines_total", outcome="succeeded") == 1
    assert "gateway_batch_lines_waiting" in scrape.names()

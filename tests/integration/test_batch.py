"""The Files and Batch APIs on the real engine with the official openai SDK, one small batch
per task endpoint and one of chat, and the client's `python -m llm_gateway batch run`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Batch

from service.app import create_app
from service.config import TEST_PROFILE, Settings
from tests.integration.conftest import Borrowed, LiveServer
from tests.servers import serve_on

pytestmark = pytest.mark.engine

GUARD = 600.0  # seconds: a stuck batch fails here
NEWS = (
    "The city council met on Monday evening to discuss the new library. After a long debate, "
    "the members approved the budget for the building, which will open next spring. The mayor "
    "said the library would have a large children's section and a cafe."
)
BODIES: dict[str, list[dict[str, Any]]] = {
    "/v1/chat/completions": [
        {
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 12,
            "temperature": 0,
        },
        {
            "messages": [{"role": "user", "content": "Name a color."}],
            "max_tokens": 8,
            "temperature": 0,
        },
    ],
    "/v1/generate": [{"prompt": "The capital of France is", "max_new_tokens": 8}],
    "/v1/summarize": [{"text": NEWS, "max_length": 48}],
    "/v1/classify": [
        {"text": "I love this phone, it is wonderful!", "labels": "sentiment"},
        {"text": "This is the worst purchase I have ever made.", "labels": "sentiment"},
    ],
}


@pytest.fixture(scope="module")
def batch_gateway(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The session's engine behind an app with a store of its own: no other app of the session
    (whose drainers share the session's store) takes its lines."""
    engine = live_server.state.engine
    assert engine is not None
    settings = Settings(**TEST_PROFILE, data_dir=tmp_path_factory.mktemp("batch-data"))
    app = create_app(settings, engine_factory=lambda: Borrowed(engine))
    with serve_on(app, live_server.loop) as url:
        yield url


@pytest.fixture(scope="module")
def client(batch_gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{batch_gateway}/v1", api_key="unused", max_retries=0)


def wait(client: openai.OpenAI, batch_id: str) -> Batch:
    give_up = time.monotonic() + GUARD
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < give_up, f"the batch never ended: {batch}"
        time.sleep(0.2)  # polling the server's progress


def outputs(client: openai.OpenAI, file_id: str | None) -> dict[str, Any]:
    assert file_id is not None
    lines = [json.loads(text) for text in client.files.content(file_id).text.splitlines()]
    return {line["custom_id"]: line["response"] for line in lines}


def test_a_batch_per_endpoint_through_the_openai_sdk(
    client: openai.OpenAI, live_server: LiveServer
) -> None:
    batches = {}
    for endpoint, bodies in BODIES.items():
        content = "".join(
            json.dumps(
                {
                    "custom_id": f"{i}",
                    "method": "POST",
                    "url": endpoint,
                    "body": {"model": live_server.model, **body},
                }
            )
            + "\n"
            for i, body in enumerate(bodies)
        )
        uploaded = client.files.create(file=("in.jsonl", content.encode()), purpose="batch")
        assert client.files.retrieve(uploaded.id).bytes == len(content.encode())
        batches[endpoint] = client.batches.create(
            input_file_id=uploaded.id,
            endpoint=endpoint,  # type: ignore[arg-type]
            completion_window="24h",
        )
    done = {endpoint: wait(client, batch.id) for endpoint, batch in batches.items()}
    for endpoint, batch in done.items():
        assert batch.status == "completed" and batch.error_file_id is None, (endpoint, batch)
        assert batch.request_counts is not None
        assert batch.request_counts.completed == len(BODIES[endpoint])
    chat = outputs(client, done["/v1/chat/completions"].output_file_id)
    assert "Paris" in chat["0"]["body"]["choices"][0]["message"]["content"]
    generated = outputs(client, done["/v1/generate"].output_file_id)
    assert "Paris" in generated["0"]["body"]["results"][0]["generations"][0]["text"]
    summary = outputs(client, done["/v1/summarize"].output_file_id)
    assert "library" in summary["0"]["body"]["results"][0]["summary"].lower()
    labels = outputs(client, done["/v1/classify"].output_file_id)
    assert [labels[k]["body"]["results"][0]["label"] for k in ("0", "1")] == [
        "positive",
        "negative",
    ]
    assert client.batches.list(limit=4).data[0].id == batches["/v1/classify"].id


def test_the_batch_command_runs_a_file_of_bodies(batch_gateway: str, tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    texts = [NEWS, "The weather was sunny all week. Farmers expect a good harvest this year."]
    source.write_text("".join(json.dumps({"text": t, "max_length": 40}) + "\n" for t in texts))
    done = subprocess.run(
        [
            sys.executable, "-m", "llm_gateway", "batch", "run", str(source),
            "--endpoint", "/v1/summarize", "-o", str(target),
            "--base-url", f"{batch_gateway}/v1", "--poll", "0.2",
        ],
        capture_output=True, text=True, timeout=GUARD, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(text) for text in target.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["line-1", "line-2"]  # input order
    assert all(line["response"]["status_code"] == 200 for line in lines)
    assert lines[0]["response"]["body"]["results"][0]["summary"]
    assert "2 succeeded, 0 failed" in done.stderr and "req" in done.stderr  # the progress bar

"""`python -m llm_gateway batch run`: its input (OpenAI's batch lines or bare bodies), and a
whole run against a gateway on the fake engine, as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_gateway._batch import InputError, request_lines
from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from tests.conftest import FAKE_MODEL
from tests.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def batch_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway with a store of its own (no other app's drainer takes its lines)."""
    settings = Settings(
        model=FAKE_MODEL,
        default_max_tokens=8,
        data_dir=tmp_path_factory.mktemp("batch-data"),
        batch_poll_seconds=0.1,
    )
    app = create_app(settings, engine_factory=FakeEngine)
    with serve_in_thread(app, startup_timeout=60) as url:
        yield f"{url}/v1"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_gateway", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bodies_and_batch_lines_are_both_taken(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"text": "a"})
        + "\n\n"
        + json.dumps({"custom_id": "mine", "body": {"text": "b"}})
        + "\n"
        + json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/summarize", "body": {}})
        + "\n"
    )
    lines = list(request_lines(source, "/v1/summarize"))
    assert [line["custom_id"] for line in lines] == ["line-1", "mine", "x"]
    assert all(line["url"] == "/v1/summarize" and line["method"] == "POST" for line in lines)
    assert lines[0]["body"] == {"text": "a"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("{nope", "not JSON", id="not-json"),
        pytest.param("[1]", "not a JSON object", id="not-an-object"),
        pytest.param(json.dumps({"url": "/v1/classify", "body": {}}), "is not", id="other-url"),
    ],
)
def test_a_bad_input_line_is_named(tmp_path: Path, text: str, problem: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "a"}) + "\n" + text + "\n")
    with pytest.raises(InputError, match=f"in.jsonl:2: .*{problem}"):
        list(request_lines(source, "/v1/summarize"))


def test_a_run_writes_every_result_in_input_order(batch_gateway: str, tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    bodies = [
        {"model": FAKE_MODEL, "messages": [{"role": "user", "content": f"hi {i}"}]}
        for i in range(5)
    ]
    bodies.insert(3, {"model": FAKE_MODEL, "messages": "not a list"})
    source.write_text("".join(json.dumps(body) + "\n" for body in bodies))
    done = run(
        "batch", "run", str(source), "--endpoint", "/v1/chat/completions",
        "-o", str(target), "--base-url", batch_gateway, "--poll", "0.05",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # one request failed
    assert "5 succeeded, 1 failed, 0 not run" in done.stderr
    lines = [json.loads(text) for text in target.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"line-{i}" for i in range(1, 7)]
    assert [line["response"]["status_code"] for line in lines] == [200, 200, 200, 400, 200, 200]


def test_a_failed_batch_names_its_lines_and_writes_nothing(
    batch_gateway: str, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    line = {"custom_id": "same", "body": {"text": "a"}}
    source.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n")
    done = run(
        "batch", "run", str(source), "--endpoint", "/v1/summarize",
        "-o", str(target), "--base-url", batch_gateway, "--quiet",
    )  # fmt: skip
    assert done.returncode == 1
    assert "in.jsonl:2:" in done.stderr and "same" in done.stderr
    assert not target.exists()


def test_an_unreadable_input_is_exit_status_2(batch_gateway: str, tmp_path: Path) -> None:
    done = run(
        "batch", "run", str(tmp_path / "missing.jsonl"), "--endpoint", "/v1/summarize",
        "-o", str(tmp_path / "out.jsonl"), "--base-url", batch_gateway,
    )  # fmt: skip
    assert done.returncode == 2 and "error:" in done.stderr

"""The locustfile imports and lists its users, and every body it sends fits the API contracts."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests import workload
from service.schemas.chat import ChatCompletionRequest
from service.schemas.completions import CompletionRequest
from service.schemas.tasks import (
    ClassifyRequest,
    GenerateRequest,
    SummarizeRequest,
    TaskChatRequest,
)

ROOT = Path(__file__).resolve().parents[2]
USERS = [
    "OpenAIChatStreamUser",
    "OpenAICompletionUser",
    "GenerateUser",
    "SummarizeUser",
    "ClassifyUser",
    "TaskChatUser",
]
PROMPTS = workload.load_prompts()


def test_locustfile_imports_and_lists_every_user_class() -> None:
    # A subprocess: importing Locust monkey-patches the standard library with gevent.
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listed = done.stdout.split()
    assert all(user in listed for user in USERS), done.stdout


def test_the_shipped_prompt_set_has_every_kind_and_varied_lengths() -> None:
    assert {p.kind for p in PROMPTS} == set(workload.KINDS)
    words = sorted(len(p.text.split()) for p in PROMPTS)
    assert words[0] < 10 and words[-1] > 150
    assert all(p.label in workload.SENTIMENT for p in PROMPTS if p.kind == "review")


def test_load_prompts_names_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"kind": "question", "text": "ok"}\n{"kind": "poem", "text": "x"}\n')
    with pytest.raises(ValueError, match=r"prompts.jsonl:2"):
        workload.load_prompts(bad)


@pytest.mark.parametrize("seed", range(40))
def test_task_bodies_validate_against_the_task_schemas(seed: int) -> None:
    rng = random.Random(seed)
    GenerateRequest.model_validate(workload.generate_body(rng, PROMPTS, stream=seed % 2 == 0))
    SummarizeRequest.model_validate(workload.summarize_body(rng, PROMPTS))
    classify = ClassifyRequest.model_validate(workload.classify_body(rng, PROMPTS))
    assert classify.texts is not None and 1 <= len(classify.texts) <= 8
    TaskChatRequest.model_validate(workload.task_chat_body(rng, PROMPTS, stream=seed % 2 == 1))


@pytest.mark.parametrize("prompt", PROMPTS[::5], ids=lambda p: p.kind)
def test_openai_bodies_validate_against_the_openai_schemas(prompt: workload.Prompt) -> None:
    chat = workload.chat_body("m", prompt, max_tokens=32, stream=True, ignore_eos=True)
    parsed = ChatCompletionRequest.model_validate_json(workload.encode(chat))
    assert parsed.stream_options is not None and parsed.stream_options.include_usage
    CompletionRequest.model_validate(workload.completion_body("m", prompt, max_tokens=32))


def test_encoding_is_canonical() -> None:
    assert workload.encode({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()

"""The runnable examples in examples/, run as scripts against a real gateway (fake engine)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import FakeGateway

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(command: list[str], gateway: FakeGateway) -> str:
    env = {**os.environ, "LLM_GATEWAY_BASE_URL": gateway.base_url, "BASE_URL": gateway.base_url}
    # As from a checkout, whether or not the package is installed (editable or not).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("LLM_GATEWAY_API_KEY", None)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("script", ["openai_sdk.py", "client_tasks.py", "async_client.py"])
def test_python_example_runs(gateway: FakeGateway, script: str) -> None:
    out = run([sys.executable, str(EXAMPLES / script)], gateway)
    assert "Paris" in out  # the fake engine's reply


def test_tools_example_runs(gateway: FakeGateway) -> None:
    out = run([sys.executable, str(EXAMPLES / "tools.py")], gateway)
    assert 'call: get_weather {"city": "Paris"} tool_calls' in out
    assert "answer: " in out


def test_responses_example_runs(gateway: FakeGateway) -> None:
    out = run([sys.executable, str(EXAMPLES / "responses.py")], gateway)
    assert "create: " in out and "Paris" in out
    assert 'call: get_weather {"city": "Paris"}' in out and "answer: " in out
    assert "background: completed The capital of France is Paris." in out
    assert "items: ['user', 'assistant', 'user', 'assistant']" in out


def test_anthropic_example_runs(gateway: FakeGateway) -> None:
    out = run([sys.executable, str(EXAMPLES / "anthropic_sdk.py")], gateway)
    assert "create: The capital of France is Paris. (end_turn, request " in out
    assert "stream: The capital of France is Paris. (end_turn)" in out
    assert 'call: get_weather {"city": "Paris"} tool_use' in out
    assert "answer: " in out and "input tokens: " in out


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_example_runs(gateway: FakeGateway) -> None:
    out = run(["bash", str(EXAMPLES / "curl.sh")], gateway)
    assert "data: [DONE]" in out
    assert "invalid_combination" in out and "curl-example-1" in out

"""The reader's language on the real engine: the script constraint compiles in vLLM's structured
outputs (xgrammar) and keeps the default 135M model, which answers best in English, in the
script asked for. (A Chinese text's summaries: tests/integration/test_summarize_eval.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.services.tasks.languages import script
from service.services.tasks.summary_text import ends_sentence
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

ENGLISH_TEXT = (
    "The city council met on Tuesday and approved the budget for the new library, which will "
    "open in 2026. The mayor said the library would serve 40,000 residents."
)


def post(server: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.base_url}{path}", json=body, timeout=600)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_generate_in_chinese_goes_on_in_chinese(live_server: LiveServer) -> None:
    body: dict[str, Any] = {"prompt": "Once upon a time", "max_new_tokens": 40}
    plain = post(live_server, "/v1/generate", body)["results"][0]["generations"][0]["text"]
    assert script(plain) == "latin"  # what the model writes unconstrained
    found = post(live_server, "/v1/generate", {**body, "language": "zh"})
    text = found["results"][0]["generations"][0]["text"]
    assert script(text) == "han", text


def test_chat_in_a_language_answers_in_its_script(live_server: LiveServer) -> None:
    body = {
        "message": "Tell me about Paris in two sentences.",
        "preset": "assistant",
        "language": "Russian",
        "max_tokens": 48,
        "temperature": 0,
    }
    reply = post(live_server, "/v1/chat", body)["results"][0]["reply"]
    assert script(reply) == "cyrillic", reply


def test_an_english_text_summarized_in_chinese_is_chinese(live_server: LiveServer) -> None:
    body = {"text": ENGLISH_TEXT, "language": "Chinese", "max_length": 80}
    (result,) = post(live_server, "/v1/summarize", body)["results"]
    assert script(result["summary"]) == "han", result
    assert result["language_mismatch"] is False
    # A paragraph under the constraint may end only at a sentence's end (or be cut).
    assert result["truncated"] or ends_sentence(result["summary"]), result

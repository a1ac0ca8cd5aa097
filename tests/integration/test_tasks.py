"""The task API (generate, summarize, chat) on the real engine, over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service.engine.vllm import compat
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

CAPITAL = "The capital of France is"


def post(server: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{server.base_url}{path}", json=body, timeout=600)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def first_text(data: dict[str, Any]) -> str:
    text: str = data["results"][0]["generations"][0]["text"]
    return text


def repeated_ngrams(ids: list[int], n: int) -> set[tuple[int, ...]]:
    seen: set[tuple[int, ...]] = set()
    repeats = set()
    for i in range(len(ids) - n + 1):
        gram = tuple(ids[i : i + n])
        if gram in seen:
            repeats.add(gram)
        seen.add(gram)
    return repeats


def test_greedy_generation_is_deterministic(live_server: LiveServer) -> None:
    body = {"prompt": CAPITAL, "max_new_tokens": 12}
    first, second = post(live_server, "/v1/generate", body), post(live_server, "/v1/generate", body)
    assert first_text(first) == first_text(second)
    assert "Paris" in first_text(first)


def test_no_repeat_ngram_size_holds_where_it_is_on(live_server: LiveServer) -> None:
    prompt = "1, 2, 1, 2, 1, 2, 1, 2, 1, 2,"
    engine = live_server.state.engine
    assert engine is not None
    # The setting's default (auto): on on CPU, off on GPU, where the n-gram logits processor
    # would hold vLLM to its V1 model runner (the GPU run, loadtests/gpu, checks that side).
    assert live_server.settings.no_repeat_ngram == "auto"
    assert engine.supports_no_repeat_ngram is compat.on_cpu()
    body = {"prompt": prompt, "max_new_tokens": 24, "no_repeat_ngram_size": 2}
    if not engine.supports_no_repeat_ngram:
        response = httpx.post(f"{live_server.base_url}/v1/generate", json=body, timeout=600)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("no_repeat_ngram_size", "unsupported_parameter")
        assert "GATEWAY_NO_REPEAT_NGRAM" in error["message"]
        return
    tokenize = engine.tokenizer.encode
    plain = first_text(post(live_server, "/v1/generate", {"prompt": prompt, "max_new_tokens": 24}))
    # Without the constraint this prompt makes the model repeat itself...
    assert repeated_ngrams(tokenize(plain, add_special_tokens=False), 2)
    text = first_text(post(live_server, "/v1/generate", body))
    # ...with it, no 2-gram of the output appears twice.
    assert not repeated_ngrams(tokenize(text, add_special_tokens=False), 2)
    assert text != plain


def test_beam_search_returns_distinct_sequences(live_server: LiveServer) -> None:
    data = post(
        live_server,
        "/v1/generate",
        {"prompt": CAPITAL, "max_new_tokens": 8, "num_beams": 4, "num_return_sequences": 3},
    )
    texts = [g["text"] for g in data["results"][0]["generations"]]
    assert len(texts) == 3 and len(set(texts)) == 3
    assert data["usage"]["completion_tokens"] == sum(
        g["num_tokens"] for g in data["results"][0]["generations"]
    )


def test_min_and_max_new_tokens(live_server: LiveServer) -> None:
    short = post(live_server, "/v1/generate", {"prompt": CAPITAL, "max_new_tokens": 5})
    generation = short["results"][0]["generations"][0]
    assert generation["num_tokens"] == 5 and generation["finish_reason"] == "length"
    long = post(
        live_server,
        "/v1/generate",
        {"prompt": CAPITAL, "min_new_tokens": 40, "max_new_tokens": 60},
    )
    assert long["results"][0]["generations"][0]["num_tokens"] >= 40


def test_sampling_with_seed_and_several_sequences(live_server: LiveServer) -> None:
    body = {
        "prompts": ["Once upon a time", "In a distant galaxy"],
        "do_sample": True,
        "temperature": 0.9,
        "seed": 11,
        "num_return_sequences": 2,
        "max_new_tokens": 10,
    }
    first, again = post(live_server, "/v1/generate", body), post(live_server, "/v1/generate", body)
    assert [r["index"] for r in first["results"]] == [0, 1]
    assert all(len(r["generations"]) == 2 for r in first["results"])
    assert first["results"] == again["results"]  # the seed makes sampling repeatable


def test_generate_stream_matches_non_stream(live_server: LiveServer) -> None:
    body = {"prompt": CAPITAL, "max_new_tokens": 16}
    whole = first_text(post(live_server, "/v1/generate", body))
    deltas, usage = [], None
    with httpx.stream(
        "POST", f"{live_server.base_url}/v1/generate", json={**body, "stream": True}, timeout=120
    ) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            deltas += [d["delta"] for d in event["results"]]
            usage = event.get("usage") or usage
    assert "".join(deltas) == whole
    assert usage is not None and usage["completion_tokens"] > 0


def _long_document(tokens_wanted: int, engine_tokens: Any) -> str:
    topics = ["harbour", "railway", "library", "market", "bridge", "school", "hospital"]
    paragraphs, i = [], 0
    while True:
        topic = topics[i % len(topics)]
        paragraphs.append(
            f"In {1900 + i}, the town council of Millbrook voted {i % 9 + 3} to 2 to expand "
            f"the {topic}. The project cost {12 + i} thousand pounds and employed {40 + i} "
            f"workers. Residents argued about the {topic} for months, but most agreed it "
            f"helped trade and brought visitors to the valley."
        )
        i += 1
        if i % 10 == 0 and engine_tokens("\n\n".join(paragraphs)) >= tokens_wanted:
            return "\n\n".join(paragraphs)


def test_summary_of_a_text_five_times_the_context(live_server: LiveServer) -> None:
    engine = live_server.state.engine
    assert engine is not None
    context = engine.max_model_len
    text = _long_document(5 * context, lambda t: len(engine.tokenizer.encode(t)))
    data = post(live_server, "/v1/summarize", {"text": text, "max_length": 80})
    result = data["results"][0]
    assert result["chunks"] >= 5 and result["depth"] >= 1
    assert 0 < result["summary_tokens"] <= 80
    assert result["summary"]
    assert data["usage"]["prompt_tokens"] >= 5 * context  # every chunk went through the engine


def test_summary_length_bounds(live_server: LiveServer) -> None:
    text = (
        "The museum reopened on Monday after a two-year renovation. Visitors can now see the "
        "restored dinosaur hall, a new children's wing and a rooftop cafe."
    )
    capped = post(live_server, "/v1/summarize", {"text": text, "max_length": 12})
    assert capped["results"][0]["summary_tokens"] <= 12
    padded = post(live_server, "/v1/summarize", {"text": text, "min_length": 50, "max_length": 80})
    assert padded["results"][0]["summary_tokens"] >= 50
    bullets = post(live_server, "/v1/summarize", {"texts": [text, text], "style": "bullets"})
    assert [r["index"] for r in bullets["results"]] == [0, 1]


def test_chat_with_preset_answers(live_server: LiveServer) -> None:
    data = post(
        live_server,
        "/v1/chat",
        {"message": "What is the capital of France?", "preset": "assistant", "temperature": 0},
    )
    assert "Paris" in data["results"][0]["reply"]
    assert data["results"][0]["truncated_turns"] == 0


def test_chat_truncates_history_that_does_not_fit(live_server: LiveServer) -> None:
    filler = "Tell me more about the history of bridges in Europe. " * 60
    history = []
    for _ in range(6):
        history += [
            {"role": "user", "content": filler},
            {"role": "assistant", "content": "Bridges have a long history."},
        ]
    data = post(
        live_server,
        "/v1/chat",
        {
            "message": "What is the capital of France?",
            "history": history,
            "system": "You are a geography teacher.",
            "temperature": 0,
            "max_tokens": 32,
        },
    )
    result = data["results"][0]
    assert result["truncated_turns"] > 0
    assert data["usage"]["prompt_tokens"] + 32 <= 2048
    assert "Paris" in result["reply"]

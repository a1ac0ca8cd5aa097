"""/v1/summarize on the fake engine: one pass when the text fits, map-reduce when it does not.

Every summary the fake engine writes is its 6-token reply, so partial summaries are far
shorter than the chunks they summarize and map-reduce always converges.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.base import EngineRequest, GenerationChunk
from service.engine.fake import DEFAULT_REPLY, FakeCall, FakeEngine
from service.errors import EngineFailureError
from service.services.tasks.prompts import CHUNK_INSTRUCTION
from tests.api.helpers import assert_openai_error, serve
from tests.conftest import FAKE_MODEL

SUMMARIZE = "/v1/summarize"
SHORT = "The council met on Tuesday. It approved the budget for the new library."
REPLY_TOKENS = len(DEFAULT_REPLY.split())
Call = EngineRequest


def long_text(words: int) -> str:
    """Unique words w0 w1 ..., a sentence every 8 words and a paragraph every 40."""
    out = []
    for i in range(words):
        word = f"w{i}." if i % 8 == 7 else f"w{i}"
        out.append(word + ("\n\n" if i % 40 == 39 else " "))
    return "".join(out).strip()


def marker_words(text: str) -> list[str]:
    return re.findall(r"\bw\d+\b", text)


@asynccontextmanager
async def serving(engine: FakeEngine, **limits: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(model=FAKE_MODEL, default_max_tokens=16, **limits)
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        yield client


async def summarize(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(SUMMARIZE, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def summarize_calls(
    client: httpx.AsyncClient, engine: FakeEngine, **body: Any
) -> tuple[dict[str, Any], list[Call]]:
    """The response, and the engine calls it made, in call order."""
    before = len(engine.requests)
    result = await summarize(client, **body)
    return result, engine.requests[before:]


def prompt_of(engine: FakeEngine, call: Call) -> str:
    return engine.tokenizer.decode(call.prompt_token_ids)


def is_map(engine: FakeEngine, call: Call) -> bool:
    return CHUNK_INSTRUCTION in prompt_of(engine, call)


def assert_fits_and_counted(engine: FakeEngine, body: dict[str, Any], calls: list[Call]) -> None:
    for call in calls:
        assert len(call.prompt_token_ids) + call.options.max_tokens <= engine.max_model_len
    prompt = sum(len(call.prompt_token_ids) for call in calls)
    completion = REPLY_TOKENS * len(calls)  # every fake summary is the whole reply
    assert body["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def test_a_short_text_is_one_engine_call(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body, calls = await summarize_calls(
        client, fake_engine, text=SHORT, max_length=40, min_length=3
    )
    assert body["object"] == "summarize"
    assert body["id"].startswith("summarize-")
    assert body["model"] == FAKE_MODEL
    assert body["results"] == [
        {
            "index": 0,
            "summary": DEFAULT_REPLY,
            "finish_reason": "stop",
            "summary_tokens": REPLY_TOKENS,
            "chunks": 1,
            "depth": 0,
            "truncated": False,
            "language_mismatch": False,
        }
    ]
    assert_fits_and_counted(fake_engine, body, calls)
    (call,) = calls
    options = call.options
    assert (options.max_tokens, options.min_tokens, options.temperature) == (40, 3, 0.0)
    assert SHORT in prompt_of(fake_engine, call)


async def test_min_length_is_enforced_by_the_engine(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body, (call,) = await summarize_calls(
        client, fake_engine, text=SHORT, max_length=12, min_length=10
    )
    assert (call.options.min_tokens, call.options.max_tokens) == (10, 12)
    assert body["results"][0]["summary_tokens"] >= 10


@pytest.mark.parametrize(
    ("style", "max_tokens", "instruction"),
    [
        pytest.param("paragraph", 160, "one short paragraph", id="paragraph"),
        pytest.param("bullets", 200, "bullet points", id="bullets"),
        pytest.param("headline", 24, "single headline", id="headline"),
    ],
)
async def test_style_language_and_focus_shape_the_prompt(
    style: str, max_tokens: int, instruction: str
) -> None:
    engine = FakeEngine(max_model_len=4096)  # room for the default lengths
    async with serving(engine) as client:
        _, (call,) = await summarize_calls(
            client, engine, text=SHORT, style=style, language="French", focus="the budget"
        )
    assert (call.options.max_tokens, call.options.min_tokens) == (max_tokens, 0)
    prompt = prompt_of(engine, call)
    assert instruction in prompt
    assert "in French" in prompt
    assert "Focus on: the budget" in prompt


REJECTED = [
    # The default paragraph length (160) is over half the fake context (128).
    pytest.param({}, "max_length", id="default-length-over-half-the-context"),
    pytest.param({"max_length": 129}, "max_length", id="max_length-over-half-the-context"),
    pytest.param({"max_length": 20, "min_length": 21}, "min_length", id="min-over-max"),
    pytest.param({"style": "headline", "min_length": 25}, "min_length", id="min-over-default"),
    pytest.param({"text": None}, "text", id="neither-text-nor-texts"),
    pytest.param({"texts": ["a"]}, "text", id="both-text-and-texts"),
    pytest.param({"style": "poem", "max_length": 20}, "style", id="unknown-style"),
]


@pytest.mark.parametrize(("body", "param"), REJECTED)
async def test_a_bad_request_is_a_400(
    client: httpx.AsyncClient, fake_engine: FakeEngine, body: dict[str, Any], param: str
) -> None:
    calls = len(fake_engine.requests)
    response = await client.post(SUMMARIZE, json={"text": SHORT, **body})
    assert_openai_error(response, 400, param=param)
    assert len(fake_engine.requests) == calls


async def test_an_unknown_model_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.post(SUMMARIZE, json={"text": SHORT, "model": "x", "max_length": 9})
    assert_openai_error(response, 404, param="model", code="model_not_found")


async def test_a_text_beyond_the_context_is_map_reduced(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    text = long_text(600)  # 600 tokens in a 256-token context
    body, calls = await summarize_calls(
        client, fake_engine, text=text, max_length=32, language="French", focus="budget"
    )
    (result,) = body["results"]
    assert result["depth"] == 1
    assert result["chunks"] > 1
    assert result["summary"] == DEFAULT_REPLY
    assert_fits_and_counted(fake_engine, body, calls)
    *maps, final = calls  # the final summary runs after every map call
    assert len(maps) == result["chunks"]
    assert all(is_map(fake_engine, call) for call in maps)
    assert not is_map(fake_engine, final)
    assert final.options.max_tokens == 32
    # The chunks cover the text, in order, with nothing lost or repeated.
    seen = [w for call in maps for w in marker_words(prompt_of(fake_engine, call))]
    assert seen == marker_words(text)
    # Partial summaries are what the final call summarizes.
    assert prompt_of(fake_engine, final).count(DEFAULT_REPLY) == len(maps)
    # Every step asks for the language, the map steps too.
    assert all("Write it in French." in prompt_of(fake_engine, c) for c in calls)
    assert all("Focus on: budget" in prompt_of(fake_engine, c) for c in calls)


async def test_a_very_long_text_recurses_until_it_fits(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    text = long_text(6000)
    body, calls = await summarize_calls(client, fake_engine, text=text, max_length=32)
    (result,) = body["results"]
    assert result["depth"] >= 2
    assert_fits_and_counted(fake_engine, body, calls)
    *maps, final = calls
    assert all(is_map(fake_engine, call) for call in maps)
    assert not is_map(fake_engine, final)
    # Level 0 summarizes the text's chunks; the levels above it only earlier summaries.
    first, higher = maps[: result["chunks"]], maps[result["chunks"] :]
    seen = [w for call in first for w in marker_words(prompt_of(fake_engine, call))]
    assert seen == marker_words(text)
    assert higher
    assert all(not marker_words(prompt_of(fake_engine, call)) for call in higher)


async def test_a_batch_gives_one_result_per_text(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    texts = [SHORT, long_text(600), "Short again."]
    body, calls = await summarize_calls(client, fake_engine, texts=texts, max_length=32)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [(r["chunks"] > 1, r["depth"]) for r in results] == [(False, 0), (True, 1), (False, 0)]
    assert_fits_and_counted(fake_engine, body, calls)
    finals = [prompt_of(fake_engine, c) for c in calls if not is_map(fake_engine, c)]
    assert len(finals) == 3
    assert sum(SHORT in p for p in finals) == 1
    assert sum("Short again." in p for p in finals) == 1
    maps = [c for c in calls if is_map(fake_engine, c)]
    assert len(maps) == results[1]["chunks"]


LIMITS = [
    pytest.param({"texts": ["a", "b", "c"]}, 413, "texts", id="batch"),
    pytest.param({"text": "x" * 51}, 413, "text", id="long-text"),
    pytest.param({"texts": ["a", "x" * 51]}, 413, "texts.1", id="long-batch-item"),
]


@pytest.mark.parametrize(("body", "status", "param"), LIMITS)
async def test_input_limits(body: dict[str, Any], status: int, param: str) -> None:
    async with serving(FakeEngine(), max_batch_size=2, max_text_chars=50) as client:
        response = await client.post(SUMMARIZE, json={"max_length": 20, **body})
        assert_openai_error(response, status, param=param)


def budget_engine(*, budget: int, max_model_len: int) -> FakeEngine:
    """A fake engine that fails once `budget` calls are spent, so a map-reduce that never
    converges ends."""
    engine = FakeEngine(max_model_len=max_model_len)

    def handler(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        if len(engine.requests) > budget:
            raise EngineFailureError("Engine call budget spent: map-reduce does not converge.")
        return call.reply()

    engine.handler = handler
    return engine


async def test_map_reduce_converges_in_a_small_context() -> None:
    # At 200 tokens, a fixed 160-token partial summary leaves no room for the chunk itself.
    engine = budget_engine(budget=100, max_model_len=200)
    async with serving(engine) as client:
        body, calls = await summarize_calls(client, engine, text=long_text(400), max_length=32)
    assert body["results"][0]["depth"] >= 1
    assert_fits_and_counted(engine, body, calls)


# --------------------------------------------------------------------------- ends and languages
CUT_REPLY = "The council met on Tuesday. It voted to fund the bridge and then adjourned."


@pytest.mark.parametrize(
    ("min_length", "expected"),
    [
        pytest.param(None, "The council met on Tuesday.", id="trimmed-to-the-sentence"),
        # Trimming would leave 5 tokens, under min_length: the cut-off text stays.
        pytest.param(6, "The council met on Tuesday. It voted to", id="min_length-keeps-it"),
    ],
)
async def test_a_summary_cut_at_max_length_ends_at_a_sentence(
    min_length: int | None, expected: str
) -> None:
    body: dict[str, Any] = {"text": SHORT, "max_length": 8}
    if min_length is not None:
        body["min_length"] = min_length
    async with serving(FakeEngine(reply=CUT_REPLY)) as client:
        response = await client.post(SUMMARIZE, json=body)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["summary"], result["truncated"]) == (expected, True)
    assert result["finish_reason"] == "length"


def summary_prompts(engine: FakeEngine) -> list[str]:
    prompts = (engine.tokenizer.decode(r.prompt_token_ids) for r in engine.requests)
    return [p for p in prompts if "Summary:" in p]  # not the start-up warm-up


CHINESE_TEXT = "市议会周二开会。议员们讨论了新桥的预算,并投票通过了资金。"


async def test_a_summary_in_another_script_is_retried_then_reported() -> None:
    engine = FakeEngine()  # answers in English whatever it is asked
    async with serving(engine) as client:
        response = await client.post(SUMMARIZE, json={"text": CHINESE_TEXT, "max_length": 20})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["language_mismatch"] is True
    # Asked, asked insisting, then under the script constraint (test_task_language.py).
    first, retry, constrained = summary_prompts(engine)
    assert "Write it in Chinese." in first and "Use only Chinese" not in first
    assert "Use only Chinese" in retry and "Use only Chinese" in constrained


async def test_a_long_chinese_text_asks_for_chinese_at_every_step() -> None:
    # No `language` field: the script decides, for the map steps as for the final one.
    engine = FakeEngine(reply="议会 通过了 预算。", max_model_len=256)
    # The fake tokenizer splits on spaces: 10 tokens a paragraph, 400 in a 256-token context.
    text = "\n\n".join(
        f"第{i}段 市议会 周二 开会 议员们 讨论了 新桥的 预算 并 通过。" for i in range(40)
    )
    async with serving(engine) as client:
        response = await client.post(SUMMARIZE, json={"text": text, "max_length": 20})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["chunks"] > 1, result["language_mismatch"]) == (True, False)
    prompts = summary_prompts(engine)
    maps = [p for p in prompts if CHUNK_INSTRUCTION in p]
    assert len(maps) >= result["chunks"]
    assert len(prompts) > len(maps)  # and the final step
    assert all("Write it in Chinese." in p for p in prompts)
    assert not any("Use only Chinese" in p for p in prompts)  # no retry was needed


async def test_a_summary_in_the_texts_script_is_not_retried() -> None:
    engine = FakeEngine(reply="议会 通过了 预算。")
    async with serving(engine) as client:
        response = await client.post(SUMMARIZE, json={"text": CHINESE_TEXT, "max_length": 20})
    (result,) = response.json()["results"]
    assert result["language_mismatch"] is False
    assert len(summary_prompts(engine)) == 1

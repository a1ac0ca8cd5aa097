"""The reader's language on the fake engine: summaries asked plainly, then insisting, then
under the script constraint; chat and generate constrained when the caller names a language.

The fake engine answers in English whatever it is asked, and (`held_to_chinese`) in Chinese
under a grammar constraint, as a real engine under the constraint would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.engine.base import EngineRequest, GenerationChunk, SequenceDelta
from service.engine.fake import FakeCall, FakeEngine
from service.services.tasks.prompts import CHAT_PRESETS, CHUNK_INSTRUCTION
from service.services.tasks.script_grammar import script_grammar
from tests.api.helpers import assert_openai_error, make_app, serve

CHINESE_TEXT = "市议会周二开会。议员们讨论了新桥的预算,并投票通过了资金。"
CHINESE_REPLY = "议会 通过了 预算。"


def held_to_chinese(**kwargs: Any) -> FakeEngine:
    """A fake engine that answers its English reply, and CHINESE_REPLY under a grammar."""

    async def handler(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        structured = call.request.options.structured
        if structured is None or structured.grammar is None:
            async for chunk in call.reply():
                yield chunk
            return
        ids = call.engine.tokenizer.encode(CHINESE_REPLY)
        whole = SequenceDelta(0, CHINESE_REPLY, ids, None, "stop")
        yield GenerationChunk([whole], len(call.request.prompt_token_ids), True)

    return FakeEngine(handler=handler, **kwargs)


async def post_calls(
    engine: FakeEngine, path: str, body: dict[str, Any], **settings: Any
) -> tuple[httpx.Response, list[EngineRequest]]:
    """The response, and the engine calls it made (not the start-up's)."""
    async with serve(make_app(engine, **settings)) as client:
        before = len(engine.requests)
        response = await client.post(path, json=body)
    return response, engine.requests[before:]


def prompt_of(engine: FakeEngine, call: EngineRequest) -> str:
    return engine.tokenizer.decode(call.prompt_token_ids)


def grammar_of(call: EngineRequest) -> str | None:
    structured = call.options.structured
    return None if structured is None else structured.grammar


# --------------------------------------------------------------------------- summarize
async def test_a_summary_off_script_twice_is_decoded_under_the_constraint() -> None:
    engine = held_to_chinese()
    response, calls = await post_calls(
        engine, "/v1/summarize", {"text": CHINESE_TEXT, "max_length": 20}
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["summary"], result["language_mismatch"]) == (CHINESE_REPLY, False)
    plain, insisting, constrained = calls
    assert [grammar_of(c) for c in (plain, insisting)] == [None, None]
    # A paragraph: the constrained summary may end only at a sentence's end.
    assert grammar_of(constrained) == script_grammar("han", complete=True)
    assert "Use only Chinese" in prompt_of(engine, constrained)
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == sum(len(c.prompt_token_ids) for c in calls)


async def test_a_summary_still_off_script_under_the_constraint_is_flagged() -> None:
    engine = FakeEngine()  # English even under the constraint: as if it could not be applied
    response, calls = await post_calls(
        engine, "/v1/summarize", {"text": CHINESE_TEXT, "max_length": 20, "style": "bullets"}
    )
    (result,) = response.json()["results"]
    assert result["language_mismatch"] is True
    assert len(calls) == 3
    # Bullets and headlines may end without a stop.
    assert grammar_of(calls[2]) == script_grammar("han", complete=False)


async def test_every_map_step_is_kept_in_the_language() -> None:
    engine = held_to_chinese(max_model_len=256)
    # The fake tokenizer splits on spaces: 10 tokens a paragraph, 400 in a 256-token context.
    text = "\n\n".join(
        f"第{i}段 市议会 周二 开会 议员们 讨论了 新桥的 预算 并 通过。" for i in range(40)
    )
    response, calls = await post_calls(engine, "/v1/summarize", {"text": text, "max_length": 20})
    (result,) = response.json()["results"]
    assert (result["chunks"] > 1, result["language_mismatch"]) == (True, False)
    maps = [c for c in calls if CHUNK_INSTRUCTION in prompt_of(engine, c)]
    constrained = [c for c in maps if grammar_of(c) is not None]
    # Each chunk: asked, asked insisting, then constrained (its answer is in Chinese).
    assert len(maps) == 3 * len(constrained) == 3 * result["chunks"]
    assert {grammar_of(c) for c in constrained} == {script_grammar("han", complete=True)}


async def test_a_summary_in_the_language_asked_is_not_constrained() -> None:
    engine = FakeEngine(reply=CHINESE_REPLY)
    response, calls = await post_calls(
        engine, "/v1/summarize", {"text": "The council met.", "language": "zh", "max_length": 20}
    )
    assert response.json()["results"][0]["language_mismatch"] is False
    (call,) = calls
    assert grammar_of(call) is None
    assert "Write it in Chinese." in prompt_of(engine, call)  # the code, asked by its name


# --------------------------------------------------------------------------- chat and generate
@pytest.mark.parametrize(
    ("body", "system"),
    [
        pytest.param(
            {"preset": "customer_service"},
            f"{CHAT_PRESETS['customer_service']} Answer in Chinese.",
            id="preset",
        ),
        pytest.param({"system": "Be brief."}, "Be brief. Answer in Chinese.", id="system"),
        pytest.param({}, "Answer in Chinese.", id="no-system"),
    ],
)
async def test_chat_in_a_language_asks_for_it_and_is_constrained(
    body: dict[str, Any], system: str
) -> None:
    engine = held_to_chinese()
    response, (call,) = await post_calls(
        engine, "/v1/chat", {"message": "Where is my order?", "language": "zh", **body}
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["reply"] == CHINESE_REPLY
    assert prompt_of(engine, call).startswith(f"system: {system} user: Where is my order?")
    assert grammar_of(call) == script_grammar("han", complete=False)


async def test_generate_in_a_language_is_constrained_as_a_continuation() -> None:
    engine = held_to_chinese()
    response, (call,) = await post_calls(
        engine, "/v1/generate", {"prompt": "Once upon a time", "language": "Chinese"}
    )
    assert response.json()["results"][0]["generations"][0]["text"] == CHINESE_REPLY
    assert grammar_of(call) == script_grammar("han", complete=False, continuation=True)


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/generate"])
async def test_without_a_language_nothing_is_constrained(path: str) -> None:
    engine = FakeEngine()
    body = {"message": "hi"} if path == "/v1/chat" else {"prompt": "hi"}
    response, (call,) = await post_calls(engine, path, body)
    assert response.status_code == 200, response.text
    assert call.options.structured is None


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        pytest.param("/v1/chat", {"message": "hi", "language": "Klingon"}, None, id="chat"),
        pytest.param("/v1/generate", {"prompt": "hi", "language": "Klingon"}, None, id="generate"),
        pytest.param(
            "/v1/generate",
            {"prompt": "hi", "language": "zh", "num_beams": 2},
            "invalid_combination",
            id="generate-beams",
        ),
    ],
)
async def test_a_language_that_cannot_be_kept_is_a_400(
    path: str, body: dict[str, Any], code: str | None
) -> None:
    response, calls = await post_calls(FakeEngine(), path, body)
    assert_openai_error(response, 400, param="language", code=code)
    assert calls == []

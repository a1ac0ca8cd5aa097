"""/v1/chat on the fake engine (template: "role: content ... assistant:", a token per word)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.base import EngineRequest
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from service.services.tasks.prompts import CHAT_PRESETS
from tests.api.helpers import assert_openai_error, serve, sse_json
from tests.conftest import FAKE_MODEL

CHAT = "/v1/chat"
REPLY_TOKENS = len(DEFAULT_REPLY.split())
Turn = dict[str, str]
Call = EngineRequest


def turn(role: str, content: str) -> Turn:
    return {"role": role, "content": content}


async def chat_call(
    client: httpx.AsyncClient, engine: FakeEngine, **body: Any
) -> tuple[dict[str, Any], Call]:
    """The response and the one engine call it made."""
    before = len(engine.requests)
    response = await client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    (call,) = engine.requests[before:]
    result: dict[str, Any] = response.json()
    return result, call


def rendered(engine: FakeEngine, messages: list[Turn]) -> str:
    """What the engine sees for `messages` under the fake chat template."""
    tok = engine.tokenizer
    return tok.decode(tok.encode(tok.apply_chat_template(messages)))


def prompt_of(engine: FakeEngine, call: Call) -> str:
    return engine.tokenizer.decode(call.prompt_token_ids)


HISTORY = [turn("user", "Hi there"), turn("assistant", "Hello, how can I help?")]
CONVERSATIONS = [
    pytest.param(
        {"message": "Where is my order?", "history": HISTORY},
        [*HISTORY, turn("user", "Where is my order?")],
        id="message-and-history",
    ),
    pytest.param(
        {"messages": [*HISTORY, turn("user", "Where is my order?")]},
        [*HISTORY, turn("user", "Where is my order?")],
        id="messages",
    ),
    pytest.param(
        {"message": "Hi", "system": "Speak like a pirate."},
        [turn("system", "Speak like a pirate."), turn("user", "Hi")],
        id="system",
    ),
    pytest.param(
        {"messages": [turn("system", "Be terse."), turn("user", "Hi")]},
        [turn("system", "Be terse."), turn("user", "Hi")],
        id="system-message",
    ),
    pytest.param(
        {"message": "Where is my order?", "preset": "customer_service"},
        [turn("system", CHAT_PRESETS["customer_service"]), turn("user", "Where is my order?")],
        id="preset-customer-service",
    ),
    pytest.param(
        {"message": "Hi", "preset": "assistant"},
        [turn("system", CHAT_PRESETS["assistant"]), turn("user", "Hi")],
        id="preset-assistant",
    ),
]


@pytest.mark.parametrize(("body", "messages"), CONVERSATIONS)
async def test_the_conversation_reaches_the_engine_through_the_template(
    client: httpx.AsyncClient, fake_engine: FakeEngine, body: dict[str, Any], messages: list[Turn]
) -> None:
    result, call = await chat_call(client, fake_engine, **body)
    assert prompt_of(fake_engine, call) == rendered(fake_engine, messages)
    assert result["object"] == "chat"
    assert result["id"].startswith("chat-")
    assert result["model"] == FAKE_MODEL
    assert result["results"] == [
        {"index": 0, "reply": DEFAULT_REPLY, "finish_reason": "stop", "truncated_turns": 0}
    ]
    prompt_tokens = len(call.prompt_token_ids)
    assert result["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": REPLY_TOKENS,
        "total_tokens": prompt_tokens + REPLY_TOKENS,
    }


KNOBS = [
    pytest.param(
        {}, {"temperature": 0.7, "top_p": 1.0, "top_k": 0, "max_tokens": 16}, id="defaults"
    ),
    pytest.param(
        {"temperature": 0.2, "top_p": 0.8, "top_k": 5, "repetition_penalty": 1.2, "seed": 7},
        {"temperature": 0.2, "top_p": 0.8, "top_k": 5, "repetition_penalty": 1.2, "seed": 7},
        id="sampling",
    ),
    pytest.param({"max_tokens": 3}, {"max_tokens": 3}, id="max_tokens"),
    pytest.param({"stop": "France"}, {"stop": ("France",)}, id="stop"),
]


@pytest.mark.parametrize(("body", "expected"), KNOBS)
async def test_sampling_knobs_reach_the_engine(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    _, call = await chat_call(client, fake_engine, message="Hi", **body)
    assert {name: getattr(call.options, name) for name in expected} == expected


async def test_a_reply_cut_by_max_tokens_says_length(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    result, _ = await chat_call(client, fake_engine, message="Hi", max_tokens=2)
    assert result["results"][0]["reply"] == "The capital"
    assert result["results"][0]["finish_reason"] == "length"


REJECTED = [
    pytest.param({"message": "Hi", "system": "S", "preset": "assistant"}, "system", id="both"),
    pytest.param(
        {"messages": [turn("system", "S"), turn("user", "Hi")], "system": "T"},
        "system",
        id="system-twice",
    ),
    pytest.param(
        {"messages": [turn("system", "S"), turn("user", "Hi")], "preset": "assistant"},
        "system",
        id="system-message-and-preset",
    ),
    pytest.param(
        {"message": "Hi", "history": [turn("system", "S")], "preset": "assistant"},
        "system",
        id="system-in-history-and-preset",
    ),
    pytest.param({"messages": HISTORY}, "messages", id="ends-with-assistant"),
    pytest.param({"messages": [turn("system", "S")]}, "messages", id="system-only"),
    pytest.param(
        {"messages": [turn("user", "Hi")], "history": HISTORY}, "history", id="history-and-messages"
    ),
    pytest.param({"message": "Hi", "messages": [turn("user", "Hi")]}, "message", id="both-forms"),
    pytest.param({}, "message", id="neither-form"),
    pytest.param({"message": ""}, "message", id="empty-message"),
    pytest.param({"message": "Hi", "preset": "pirate"}, "preset", id="unknown-preset"),
    pytest.param({"message": "Hi", "max_tokens": 0}, "max_tokens", id="max_tokens-0"),
]


@pytest.mark.parametrize(("body", "param"), REJECTED)
async def test_a_bad_conversation_is_a_400(
    client: httpx.AsyncClient, fake_engine: FakeEngine, body: dict[str, Any], param: str
) -> None:
    calls = len(fake_engine.requests)
    assert_openai_error(await client.post(CHAT, json=body), 400, param=param)
    assert len(fake_engine.requests) == calls


async def test_an_unknown_model_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json={"message": "Hi", "model": "gpt-9"})
    assert_openai_error(response, 404, param="model", code="model_not_found")


# --------------------------------------------------------------------------- context fitting
SMALL_CONTEXT = 64  # 16 tokens are kept for the reply (a quarter of the context)


async def test_the_oldest_turns_are_dropped_to_fit_the_context() -> None:
    engine = FakeEngine(max_model_len=SMALL_CONTEXT)
    history = [
        turn("user" if i % 2 == 0 else "assistant", f"turn{i} " + "word " * 6) for i in range(10)
    ]
    settings = Settings(model=FAKE_MODEL, default_max_tokens=16)
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        result, call = await chat_call(
            client, engine, message="lastquestion now", history=history, system="Be brief."
        )
    dropped = result["results"][0]["truncated_turns"]
    assert 0 < dropped < len(history)
    assert len(call.prompt_token_ids) + call.options.max_tokens <= SMALL_CONTEXT
    # Exactly the oldest turns went; the system prompt and the last user turn stayed.
    kept = [turn("system", "Be brief."), *history[dropped:], turn("user", "lastquestion now")]
    assert prompt_of(engine, call) == rendered(engine, kept)
    # And no more were dropped than needed: one turn fewer would not have fit.
    one_more = [turn("system", "Be brief."), *history[dropped - 1 :], turn("user", "q")]
    assert len(engine.tokenizer.encode(rendered(engine, one_more))) + 16 > SMALL_CONTEXT
    assert result["usage"]["prompt_tokens"] == len(call.prompt_token_ids)


LONG = "word " * 60
OLD = [turn("user", "old")]  # history that is dropped first and still does not make room
IMPOSSIBLE = [
    pytest.param({"message": "Hi", "system": LONG, "history": OLD}, "message", id="long-system"),
    pytest.param({"message": LONG, "history": OLD}, "message", id="long-message"),
    pytest.param({"messages": [*OLD, turn("user", LONG)]}, "messages", id="messages-long-message"),
    pytest.param(
        {"messages": [turn("system", LONG), *OLD, turn("user", "Hi")]},
        "messages",
        id="messages-long-system",
    ),
    # "user: Hi assistant:" is 3 tokens; 3 + 62 > 64.
    pytest.param(
        {"message": "Hi", "history": OLD, "max_tokens": 62}, "max_tokens", id="max_tokens"
    ),
]


@pytest.mark.parametrize(("body", "param"), IMPOSSIBLE)
async def test_a_conversation_that_cannot_fit_is_a_400(body: dict[str, Any], param: str) -> None:
    engine = FakeEngine(max_model_len=SMALL_CONTEXT)
    settings = Settings(model=FAKE_MODEL, default_max_tokens=16)
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        before = len(engine.requests)
        response = await client.post(CHAT, json=body)
        assert_openai_error(response, 400, param=param, code="context_length_exceeded")
        assert len(engine.requests) == before


# --------------------------------------------------------------------------- streaming
async def test_a_stream_gives_the_reply_in_chat_chunks(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = {"message": "Hi", "preset": "assistant", "stop": "Paris"}
    whole = (await client.post(CHAT, json=body)).json()
    response = await client.post(CHAT, json={**body, "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    *deltas, last = sse_json(response.text)
    assert deltas
    assert {c["object"] for c in [*deltas, last]} == {"chat.chunk"}
    assert len({c["id"] for c in [*deltas, last]}) == 1
    assert all(c.get("usage") is None for c in deltas)
    pieces = [d for c in deltas for d in c["results"]]
    assert {d["index"] for d in pieces} == {0}
    assert "".join(d["delta"] for d in pieces) == whole["results"][0]["reply"]
    assert [d["finish_reason"] for d in pieces][-1] == "stop"
    assert all(d["finish_reason"] is None for d in pieces[:-1])
    assert last["results"] == []
    assert last["usage"] == whole["usage"]


async def test_an_engine_failure_in_a_stream_is_an_error_event_then_done(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    fake_engine.fail_with = RuntimeError("boom at /srv/secret.py")
    response = await client.post(CHAT, json={"message": "Hi", "stream": True})
    assert response.status_code == 200
    (error,) = sse_json(response.text)
    assert error["error"]["code"] == "engine_error"
    assert "secret" not in response.text

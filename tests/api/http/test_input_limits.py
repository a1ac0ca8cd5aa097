"""Input limits from the settings: beyond one is a 413 naming the field, before any tokenizing.

Also the `timeout` field every request takes: validated, and never passed on to the engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from tests.api.helpers import CHAT, COMPLETIONS, assert_openai_error, serve
from tests.conftest import FAKE_MODEL

GENERATE, SUMMARIZE, CLASSIFY, TASK_CHAT = (
    "/v1/generate",
    "/v1/summarize",
    "/v1/classify",
    "/v1/chat",
)
LONG = "x" * 21  # one character over max_text_chars below


class CountingEngine(FakeEngine):
    """The fake engine, counting every tokenizer call (limits must come before any)."""

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer_calls = 0
        tokenizer = self.tokenizer
        for name in ("encode", "apply_chat_template"):
            method = getattr(tokenizer, name)

            def counted(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
                self.tokenizer_calls += 1
                return _method(*args, **kwargs)

            setattr(tokenizer, name, counted)


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine()


@pytest.fixture
async def limited(engine: CountingEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        model=FAKE_MODEL,
        default_max_tokens=8,
        max_messages=3,
        max_labels=3,
        max_batch_size=2,
        max_text_chars=20,
    )
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        engine.tokenizer_calls = 0  # the warm-up's
        engine.requests.clear()
        yield client


def user(n: int, content: str = "hi") -> list[dict[str, str]]:
    return [{"role": "user", "content": content} for _ in range(n)]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": FAKE_MODEL, "messages": user(1), **fields}


OVER = [
    # --- /v1/chat/completions
    pytest.param(CHAT, chat(messages=user(4)), "messages", id="chat-messages"),
    pytest.param(
        CHAT,
        chat(messages=[*user(1), {"role": "user", "content": LONG}]),
        "messages.1.content",
        id="chat-message-text",
    ),
    pytest.param(
        CHAT,
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": LONG}]}]),
        "messages.0.content",
        id="chat-message-parts",
    ),
    # --- /v1/completions
    pytest.param(
        COMPLETIONS, {"model": FAKE_MODEL, "prompt": ["a", "b", "c"]}, "prompt", id="prompts"
    ),
    pytest.param(
        COMPLETIONS, {"model": FAKE_MODEL, "prompt": [[1], [2], [3]]}, "prompt", id="token-lists"
    ),
    pytest.param(COMPLETIONS, {"model": FAKE_MODEL, "prompt": LONG}, "prompt", id="prompt-text"),
    pytest.param(
        COMPLETIONS, {"model": FAKE_MODEL, "prompt": ["a", LONG]}, "prompt.1", id="prompt-item"
    ),
    # --- /v1/chat
    pytest.param(TASK_CHAT, {"messages": user(4)}, "messages", id="task-chat-messages"),
    pytest.param(
        TASK_CHAT, {"history": user(3), "message": "hi"}, "history", id="task-chat-history"
    ),
    pytest.param(TASK_CHAT, {"message": LONG}, "message", id="task-chat-message"),
    pytest.param(TASK_CHAT, {"message": "hi", "system": LONG}, "system", id="task-chat-system"),
    pytest.param(
        TASK_CHAT,
        {"messages": [{"role": "user", "content": LONG}]},
        "messages.0.content",
        id="task-chat-turn",
    ),
    # --- /v1/classify
    pytest.param(
        CLASSIFY, {"text": "hi", "labels": ["a", "b", "c", "d"]}, "labels", id="classify-labels"
    ),
    pytest.param(
        CLASSIFY, {"texts": ["a", "b", "c"], "labels": "sentiment"}, "texts", id="classify-texts"
    ),
    pytest.param(CLASSIFY, {"text": LONG, "labels": "sentiment"}, "text", id="classify-text"),
    pytest.param(
        CLASSIFY,
        {"text": "hi", "labels": ["a", "b"], "examples": [{"text": LONG, "label": "a"}]},
        "examples.0.text",
        id="classify-example",
    ),
    pytest.param(
        CLASSIFY,
        {"text": "hi", "labels": ["a", "b"], "label_descriptions": {"b": LONG}},
        "label_descriptions.b",
        id="classify-description",
    ),
    # --- /v1/generate and /v1/summarize
    pytest.param(GENERATE, {"prompts": ["a", "b", "c"]}, "prompts", id="generate-prompts"),
    pytest.param(GENERATE, {"prompts": ["a", LONG]}, "prompts.1", id="generate-prompt"),
    pytest.param(SUMMARIZE, {"texts": ["a", "b", "c"]}, "texts", id="summarize-texts"),
    pytest.param(SUMMARIZE, {"text": LONG}, "text", id="summarize-text"),
]


@pytest.mark.parametrize(("path", "body", "param"), OVER)
async def test_over_a_limit_is_a_413_before_any_tokenizing(
    limited: httpx.AsyncClient, engine: CountingEngine, path: str, body: dict[str, Any], param: str
) -> None:
    response = await limited.post(path, json=body)
    error = assert_openai_error(response, 413, param=param, code="payload_too_large")
    assert error["type"] == "invalid_request_error"
    assert engine.tokenizer_calls == 0
    assert engine.requests == []


AT = [
    pytest.param(CHAT, chat(messages=user(3, "x" * 20)), id="chat"),
    pytest.param(COMPLETIONS, {"model": FAKE_MODEL, "prompt": ["a", "x" * 20]}, id="completions"),
    pytest.param(TASK_CHAT, {"history": user(2), "message": "x" * 20}, id="task-chat"),
    pytest.param(CLASSIFY, {"texts": ["a", "b"], "labels": ["a", "b", "c"]}, id="classify"),
    pytest.param(GENERATE, {"prompts": ["a", "x" * 20]}, id="generate"),
    pytest.param(SUMMARIZE, {"texts": ["a", "x" * 20], "style": "headline"}, id="summarize"),
]


@pytest.mark.parametrize(("path", "body"), AT)
async def test_exactly_at_the_limits_is_served(
    limited: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await limited.post(path, json=body)
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- timeout
BODIES = {
    CHAT: chat(),
    COMPLETIONS: {"model": FAKE_MODEL, "prompt": "hi"},
    GENERATE: {"prompt": "hi"},
    SUMMARIZE: {"text": "hi", "style": "headline"},  # the default length needs > 256 tokens
    CLASSIFY: {"text": "hi", "labels": "sentiment"},
    TASK_CHAT: {"message": "hi"},
}
PATHS = [pytest.param(path, id=path.removeprefix("/v1/")) for path in BODIES]


@pytest.mark.parametrize("path", PATHS)
async def test_timeout_is_accepted_and_not_passed_to_the_engine(
    client: httpx.AsyncClient, fake_engine: FakeEngine, path: str
) -> None:
    fake_engine.requests.clear()
    plain = await client.post(path, json=BODIES[path])
    assert plain.status_code == 200, plain.text
    without = {repr(r.options) for r in fake_engine.requests}
    fake_engine.requests.clear()
    timed = await client.post(path, json={**BODIES[path], "timeout": 30.5})
    assert timed.status_code == 200, timed.text
    # The same engine options (classify's second call reuses its cached priors, hence sets):
    # the deadline is the gateway's, never a sampling parameter.
    assert {repr(r.options) for r in fake_engine.requests} == without
    assert "timeout" not in repr(without)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"0", id="zero"),
        pytest.param(b"-1", id="negative"),
        pytest.param(b"NaN", id="nan"),
        pytest.param(b"Infinity", id="infinity"),
        pytest.param(b'"soon"', id="string"),
        pytest.param(b"[1]", id="list"),
    ],
)
async def test_a_bad_timeout_is_a_400_naming_it(
    client: httpx.AsyncClient, fake_engine: FakeEngine, path: str, value: bytes
) -> None:
    fake_engine.requests.clear()
    body = httpx.Request("POST", "/", json=BODIES[path]).content[:-1] + b', "timeout": '
    response = await client.post(
        path, content=body + value + b"}", headers={"content-type": "application/json"}
    )
    assert_openai_error(response, 400, param="timeout")
    assert fake_engine.requests == []


async def test_timeout_is_documented_on_every_request_model(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    for name in (
        "CompletionRequest",
        "ChatCompletionRequest",
        "GenerateRequest",
        "SummarizeRequest",
        "ClassifyRequest",
        "TaskChatRequest",
    ):
        field = schemas[name]["properties"]["timeout"]
        assert "max_request_timeout_seconds" in field["description"], name

"""What `vllm-router` adds to the bodies it forwards, and vLLM's render endpoints it calls first.

The added fields are those vllm-router 0.1.17 sent in front of a capturing server: the vLLM ones
are honoured, the router-only ones ignored at their no-op values; anything else stays a 400.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from service.engine.fake import FakeEngine
from tests.api.helpers import (
    CHAT,
    COMPLETIONS,
    assert_openai_error,
    assert_rejected_before_the_engine,
    chat_body,
    completion_body,
    make_app,
    serve,
    until,
)
from tests.conftest import FAKE_MODEL

# Exactly as vllm-router 0.1.17 forwards a request that had only model, messages/prompt, max_tokens.
ROUTER_CHAT_FIELDS: dict[str, Any] = {
    "stream": False,
    "logprobs": False,
    "no_stop_trim": False,
    "ignore_eos": False,
    "continue_final_message": False,
    "skip_special_tokens": True,
    "separate_reasoning": True,
    "stream_reasoning": True,
    "return_hidden_states": False,
    "include_reasoning": True,
}
ROUTER_COMPLETION_FIELDS: dict[str, Any] = {
    "stream": False,
    "echo": False,
    "no_stop_trim": False,
    "ignore_eos": False,
    "skip_special_tokens": True,
    "return_hidden_states": False,
}
RENDER_CHAT = "/v1/chat/completions/render"
RENDER_COMPLETIONS = "/v1/completions/render"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(CHAT, chat_body(max_tokens=4, **ROUTER_CHAT_FIELDS), id="chat"),
        pytest.param(
            COMPLETIONS, completion_body(max_tokens=4, **ROUTER_COMPLETION_FIELDS), id="completions"
        ),
    ],
)
async def test_a_body_forwarded_by_the_router_is_served_like_the_plain_one(
    client: httpx.AsyncClient, fake_engine: FakeEngine, path: str, body: dict[str, Any]
) -> None:
    plain = {k: v for k, v in body.items() if k in ("model", "messages", "prompt", "max_tokens")}
    before = len(fake_engine.requests)
    first = await client.post(path, json=plain)
    second = await client.post(path, json=body)
    assert first.status_code == second.status_code == 200, second.text
    assert first.json()["choices"] == second.json()["choices"]
    request_a, request_b = fake_engine.requests[before:]
    ids_a, options_a = request_a.prompt_token_ids, request_a.options
    ids_b, options_b = request_b.prompt_token_ids, request_b.options
    assert (ids_a, options_a) == (ids_b, options_b)


@pytest.mark.parametrize(
    ("path", "field", "value", "code"),
    [
        pytest.param(CHAT, "no_stop_trim", True, "unsupported_parameter", id="no_stop_trim-true"),
        pytest.param(
            COMPLETIONS,
            "return_hidden_states",
            True,
            "unsupported_parameter",
            id="return_hidden_states-true",
        ),
        pytest.param(CHAT, "separate_reasoning", "yes", None, id="not-a-boolean"),
        pytest.param(
            COMPLETIONS, "separate_reasoning", True, "unknown_parameter", id="chat-only-field"
        ),
        pytest.param(CHAT, "no_such_field", False, "unknown_parameter", id="unknown-field"),
    ],
)
async def test_router_fields_that_would_change_the_result_are_a_400_naming_them(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    path: str,
    field: str,
    value: Any,
    code: str | None,
) -> None:
    body = (chat_body if path == CHAT else completion_body)(**{field: value})
    await assert_rejected_before_the_engine(
        client, fake_engine, path, body, 400, param=field, code=code
    )


async def test_continue_final_message_continues_the_assistants_turn(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    messages = [
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "The colour is"},
    ]
    body = {
        "model": FAKE_MODEL,
        "messages": messages,
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    response = await client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    prompt = fake_engine.tokenizer.decode(fake_engine.requests[-1].prompt_token_ids)
    assert prompt.endswith("assistant: The colour is")  # no new turn opened after it


@pytest.mark.parametrize(
    ("fields", "last_role"),
    [
        pytest.param({"continue_final_message": True}, "assistant", id="with-generation-prompt"),
        pytest.param(
            {"continue_final_message": True, "add_generation_prompt": False},
            "user",
            id="last-message-not-assistant",
        ),
    ],
)
async def test_continue_final_message_needs_a_final_assistant_message_and_no_new_turn(
    client: httpx.AsyncClient, fake_engine: FakeEngine, fields: dict[str, Any], last_role: str
) -> None:
    body = {
        "model": FAKE_MODEL,
        "messages": [{"role": last_role, "content": "Hi"}],
        **fields,
    }
    await assert_rejected_before_the_engine(
        client, fake_engine, CHAT, body, 400, param="continue_final_message"
    )


async def test_chat_render_gives_the_engines_prompt_and_runs_nothing(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = chat_body("Hello there", max_tokens=3, temperature=0.5, **ROUTER_CHAT_FIELDS)
    before = len(fake_engine.requests)
    rendered = await client.post(RENDER_CHAT, json=body)
    assert rendered.status_code == 200, rendered.text
    assert len(fake_engine.requests) == before
    served = await client.post(CHAT, json=body)
    assert served.status_code == 200
    (sent,) = fake_engine.requests[before:]
    ids, options = sent.prompt_token_ids, sent.options
    data = rendered.json()
    assert data["token_ids"] == ids
    assert data["model"] == FAKE_MODEL
    assert data["request_id"].startswith("chatcmpl-")
    assert data["stream"] is False
    params = data["sampling_params"]
    assert (params["max_tokens"], params["temperature"]) == (3, 0.5)
    assert params["max_tokens"] == options.max_tokens


async def test_completion_render_gives_one_prompt_per_prompt(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = completion_body(["one two", "three"], max_tokens=2, **ROUTER_COMPLETION_FIELDS)
    before = len(fake_engine.requests)
    rendered = await client.post(RENDER_COMPLETIONS, json=body)
    assert rendered.status_code == 200, rendered.text
    assert len(fake_engine.requests) == before
    first, second = rendered.json()
    tokenizer = fake_engine.tokenizer
    assert first["token_ids"] == tokenizer.encode("one two")
    assert second["token_ids"] == tokenizer.encode("three")
    assert first["request_id"].startswith("cmpl-")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        pytest.param(RENDER_CHAT, chat_body(tools=[{}]), "tools.0.type", id="chat-invalid-tool"),
        pytest.param(RENDER_COMPLETIONS, completion_body(bogus=1), "bogus", id="unknown-field"),
        pytest.param(
            RENDER_COMPLETIONS, {**completion_body(), "model": "other"}, "model", id="model"
        ),
    ],
)
async def test_render_refuses_what_the_endpoint_refuses(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    response = await client.post(path, json=body)
    assert_openai_error(response, 404 if param == "model" else 400, param=param)


async def test_get_load_reports_queued_plus_admitted_sequences_without_a_key(
    fake_engine: FakeEngine,
) -> None:
    fake_engine.gate = asyncio.Event()  # generations wait until the test opens it
    app = make_app(
        fake_engine, max_inflight_sequences=1, max_queued_sequences=4, api_keys="sk-test"
    )
    key = {"Authorization": "Bearer sk-test"}
    async with serve(app) as client:
        assert (await client.get("/get_load")).json() == {
            "load": 0,
            "queue_depth": 0,
            "sequences_in_flight": 0,
        }
        running = asyncio.create_task(client.post(CHAT, json=chat_body(), headers=key))
        waiting = asyncio.create_task(client.post(CHAT, json=chat_body(), headers=key))
        admission = app.state.gateway.admission
        await until(lambda: admission.queued == 1, "the second request waits for admission")
        report = await client.get("/get_load")  # the router polls without the client's key
        assert report.status_code == 200
        assert report.json() == {"load": 2, "queue_depth": 1, "sequences_in_flight": 1}
        fake_engine.gate.set()
        assert (await running).status_code == (await waiting).status_code == 200

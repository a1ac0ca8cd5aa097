"""POST /v1/messages/count_tokens on the fake engine: the prompt /v1/messages would run, system
and tools counted, without max_tokens and without engine work."""

from __future__ import annotations

from typing import Any

import httpx

from service.engine.fake import FakeEngine
from tests.api.anthropic.messages import (
    COUNT,
    MESSAGES,
    TOOLS,
    assert_anthropic_error,
    messages_body,
    sdk_client,
)
from tests.api.helpers import engine_calls, make_app
from tests.conftest import FAKE_MODEL


def count_body(**fields: Any) -> dict[str, Any]:
    return {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}


async def count(client: httpx.AsyncClient, **fields: Any) -> int:
    response = await client.post(COUNT, json=count_body(**fields))
    assert response.status_code == 200, response.text
    assert response.headers["request-id"]
    assert set(response.json()) == {"input_tokens"}
    tokens: int = response.json()["input_tokens"]
    return tokens


async def test_the_count_is_the_prompt_messages_runs(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    fields: dict[str, Any] = {"system": "Be brief.", "tools": TOOLS}
    counted = await count(client, **fields)
    assert engine_calls(fake_engine) == 0  # tokenizing only
    await client.post(MESSAGES, json=messages_body(**fields))
    assert counted == len(fake_engine.requests[-1].prompt_token_ids)


async def test_system_and_tools_are_counted(client: httpx.AsyncClient) -> None:
    plain = await count(client)
    assert await count(client, system="You are a weather bot.") > plain
    with_tools = await count(client, tools=TOOLS)
    assert with_tools > plain
    # tool_choice none leaves the tools out of the prompt, as /v1/messages does.
    assert await count(client, tools=TOOLS, tool_choice={"type": "none"}) == plain
    assert await count(client, tools=TOOLS, tool_choice={"type": "any"}) == with_tools


async def test_the_fields_the_sdk_sends_are_accepted(fake_engine: FakeEngine) -> None:
    async with sdk_client(make_app(fake_engine)) as client:
        counted = await client.messages.count_tokens(
            model=FAKE_MODEL,
            messages=[{"role": "user", "content": "hi"}],
            system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            tools=TOOLS,
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
            thinking={"type": "enabled", "budget_tokens": 1024},
            output_config={"effort": "low"},
            cache_control={"type": "ephemeral"},
            speed="standard",
        )
    assert counted.input_tokens > 0


async def test_bad_input_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(COUNT, json=count_body(max_tokens=16))
    assert_anthropic_error(response, 400, "invalid_request_error", mentions="max_tokens")
    response = await client.post(COUNT, json=count_body(tools=[{"type": "web_search_20250305"}]))
    assert_anthropic_error(response, 400, "invalid_request_error", mentions="tools.0.type")
    response = await client.post(COUNT, json={"model": FAKE_MODEL})
    assert_anthropic_error(response, 400, "invalid_request_error", mentions="messages")

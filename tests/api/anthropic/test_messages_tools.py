"""Tools on /v1/messages, on the fake engine: each tool_choice as the shared tool mode it is (the
constraint sent to the engine), tool_use blocks whole and streamed as input_json_delta, the SDK
accumulating the same calls, a tool_result round trip, and every bad input as a 400 naming it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from service.engine.base import StructuredOutput
from service.engine.fake import FakeEngine
from service.errors import InvalidRequestError
from service.schemas.anthropic import Tool
from service.services.anthropic.tools import _description
from tests.api.anthropic.messages import (
    MESSAGES,
    TOOLS,
    WEATHER,
    assert_anthropic_error,
    comparable,
    events_of,
    messages_body,
    sdk_client,
)
from tests.api.helpers import engine_calls, make_app
from tests.conftest import FAKE_MODEL


def tools_body(**fields: Any) -> dict[str, Any]:
    return messages_body("Weather in Paris?", tools=TOOLS, **fields)


def constraint(engine: FakeEngine) -> StructuredOutput | None:
    return engine.requests[-1].options.structured


async def test_tool_choice_tool_calls_it_with_a_schema_valid_input(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = tools_body(tool_choice={"type": "tool", "name": "get_weather"})
    message = (await client.post(MESSAGES, json=body)).json()
    assert constraint(fake_engine) == StructuredOutput(json_schema=WEATHER)
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    assert block["name"] == "get_weather"
    jsonschema.validate(block["input"], WEATHER)
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("disable", "max_items"),
    [pytest.param(None, None, id="parallel"), pytest.param(True, 1, id="one-call")],
)
async def test_tool_choice_any_is_the_required_mode(
    client: httpx.AsyncClient, fake_engine: FakeEngine, disable: bool | None, max_items: int | None
) -> None:
    choice: dict[str, Any] = {"type": "any"}
    if disable is not None:
        choice["disable_parallel_tool_use"] = disable
    message = (await client.post(MESSAGES, json=tools_body(tool_choice=choice))).json()
    schema = constraint(fake_engine)
    assert schema is not None and schema.json_schema is not None
    assert schema.json_schema["type"] == "array"
    assert schema.json_schema.get("maxItems") == max_items
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    jsonschema.validate(block["input"], WEATHER)
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("choice", [None, {"type": "auto"}], ids=["default", "auto"])
async def test_auto_generates_freely_and_offers_the_tools(
    client: httpx.AsyncClient, fake_engine: FakeEngine, choice: dict[str, Any] | None
) -> None:
    body = tools_body() if choice is None else tools_body(tool_choice=choice)
    message = (await client.post(MESSAGES, json=body)).json()
    assert constraint(fake_engine) is None
    prompt = fake_engine.tokenizer.decode(fake_engine.requests[-1].prompt_token_ids)
    assert prompt.startswith("tools: get_weather get_time")
    # The fake engine has no tool-call format: auto answers in text.
    assert message["content"][0]["type"] == "text" and message["stop_reason"] == "end_turn"


async def test_none_leaves_the_tools_out(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    message = (await client.post(MESSAGES, json=tools_body(tool_choice={"type": "none"}))).json()
    prompt = fake_engine.tokenizer.decode(fake_engine.requests[-1].prompt_token_ids)
    assert "tools:" not in prompt and constraint(fake_engine) is None
    assert message["content"][0]["type"] == "text"


async def test_a_streamed_call_is_input_json_deltas_of_its_input(client: httpx.AsyncClient) -> None:
    body = tools_body(tool_choice={"type": "tool", "name": "get_weather"}, stream=True)
    events = events_of((await client.post(MESSAGES, json=body)).text)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    block = events[1][1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    assert block["input"] == {} and block["id"].startswith("toolu_")
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert deltas and all(delta["type"] == "input_json_delta" for delta in deltas)
    jsonschema.validate(json.loads("".join(d["partial_json"] for d in deltas)), WEATHER)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    "choice",
    [{"type": "tool", "name": "get_weather"}, {"type": "any"}],
    ids=["tool", "any"],
)
async def test_the_sdk_accumulates_streamed_calls_into_the_same_message(
    fake_engine: FakeEngine, choice: dict[str, Any]
) -> None:
    request: dict[str, Any] = {
        "model": FAKE_MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": TOOLS,
        "tool_choice": choice,
    }
    async with sdk_client(make_app(fake_engine)) as client:
        whole = await client.messages.create(**request)
        async with client.messages.stream(**request) as stream:
            streamed = await stream.get_final_message()
    assert comparable(streamed) == comparable(whole)
    assert whole.content[0].type == "tool_use"
    assert streamed.stop_reason == whole.stop_reason == "tool_use"


async def test_a_cut_call_is_returned_as_far_as_it_got_with_max_tokens(
    client: httpx.AsyncClient,
) -> None:
    body = tools_body(tool_choice={"type": "tool", "name": "get_weather"}, max_tokens=1)
    message = (await client.post(MESSAGES, json=body)).json()
    (block,) = message["content"]
    assert block["type"] == "tool_use" and block["input"] == {}  # '{"city":' so far
    assert message["stop_reason"] == "max_tokens"


async def test_a_tool_result_round_trip(fake_engine: FakeEngine) -> None:
    async with sdk_client(make_app(fake_engine)) as client:
        first = await client.messages.create(
            model=FAKE_MODEL,
            max_tokens=64,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=TOOLS,
            tool_choice={"type": "tool", "name": "get_weather"},
        )
        call = first.content[0]
        assert call.type == "tool_use"
        answer = await client.messages.create(
            model=FAKE_MODEL,
            max_tokens=64,
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"},
                        {"type": "text", "text": "Thanks."},
                    ],
                },
            ],
            tools=TOOLS,
        )
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"
    prompt = fake_engine.tokenizer.decode(fake_engine.requests[-1].prompt_token_ids)
    assert "tool: 18 C, sunny user: Thanks. assistant:" in prompt


async def test_a_failed_call_reads_as_an_error_and_block_content_as_text(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = tools_body()
    body["messages"] += [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "is_error": True,
                    "content": [{"type": "text", "text": "no such city"}],
                }
            ],
        },
    ]
    assert (await client.post(MESSAGES, json=body)).status_code == 200
    prompt = fake_engine.tokenizer.decode(fake_engine.requests[-1].prompt_token_ids)
    assert "tool: Error: no such city assistant:" in prompt


def test_input_examples_go_with_the_description() -> None:
    tool = Tool.model_validate(TOOLS[0] | {"input_examples": [{"city": "Oslo", "unit": "celsius"}]})
    assert _description(tool) == (
        'Weather in a city\n\nInput examples:\n{"city": "Oslo", "unit": "celsius"}'
    )


def history(*blocks: dict[str, Any], role: str = "user") -> list[dict[str, Any]]:
    return [{"role": "user", "content": "Weather?"}, {"role": role, "content": list(blocks)}]


BAD: list[Any] = [
    pytest.param(
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        "tools.0.type",
        id="server-tool",
    ),
    pytest.param(
        {"tools": [*TOOLS, {"type": "bash_20250124", "name": "bash"}]},
        "tools.2.type",
        id="server-tool-second",
    ),
    pytest.param(
        {"tools": [{"name": "f", "input_schema": {"type": "string"}}]},
        "tools.0.input_schema",
        id="schema-not-object",
    ),
    pytest.param(
        {"tools": [{"name": "f", "input_schema": {"type": 3}}]},
        "tools.0.input_schema",
        id="schema-invalid",
    ),
    pytest.param({"tools": [TOOLS[0], TOOLS[0]]}, "tools.1.name", id="duplicate-name"),
    pytest.param({"tools": [{"name": "bad name!", "input_schema": {}}]}, "tools.0.name", id="name"),
    pytest.param({"tools": [{"name": "f"}]}, "tools.0.input_schema", id="no-schema"),
    pytest.param(
        {"tools": TOOLS, "tool_choice": {"type": "tool", "name": "nope"}},
        "tool_choice",
        id="unknown-named-tool",
    ),
    pytest.param({"tool_choice": {"type": "any"}}, "tool_choice", id="any-without-tools"),
    pytest.param(
        {"tools": TOOLS, "tool_choice": {"type": "sometimes"}}, "tool_choice", id="choice-type"
    ),
    pytest.param(
        {"tools": [{**TOOLS[0], "defer_loading": True}]},
        "tools.0.defer_loading",
        id="defer-loading",
    ),
    pytest.param(
        {"tools": [{**TOOLS[0], "allowed_callers": ["code_execution_20250825"]}]},
        "tools.0.allowed_callers",
        id="allowed-callers",
    ),
    pytest.param(
        {
            "messages": history(
                {"type": "tool_result", "tool_use_id": "toolu_unknown", "content": "x"}
            )
        },
        "messages.1.content.0.tool_use_id",
        id="result-of-no-call",
    ),
    pytest.param(
        {"messages": history({"type": "tool_use", "id": "t", "name": "f", "input": {}})},
        "messages.1.content.0.type",
        id="tool-use-from-the-user",
    ),
    pytest.param(
        {
            "messages": history(
                {"type": "tool_use", "id": "t", "name": "f", "input": {}, "toolset_name": "x"},
                role="assistant",
            )
        },
        "messages.1.content.0.toolset_name",
        id="toolset",
    ),
    pytest.param(
        {
            "messages": history(
                {
                    "type": "tool_use",
                    "id": "t",
                    "name": "f",
                    "input": {},
                    "caller": {"type": "code_execution_20250825", "tool_id": "x"},
                },
                role="assistant",
            )
        },
        "messages.1.content.0.caller",
        id="caller",
    ),
    pytest.param(
        {"messages": history({"type": "server_tool_use", "id": "s", "name": "web_search"})},
        "messages.1.content.0.type",
        id="server-tool-block",
    ),
    pytest.param(
        {
            "messages": history(
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "tool_reference", "tool_name": "x"}],
                }
            )
        },
        "messages.1.content.0.content.0.type",
        id="tool-reference",
    ),
]


@pytest.mark.parametrize(("fields", "param"), BAD)
async def test_bad_tools_are_a_400_naming_the_field(
    client: httpx.AsyncClient, fake_engine: FakeEngine, fields: dict[str, Any], param: str
) -> None:
    before = engine_calls(fake_engine)
    response = await client.post(MESSAGES, json=messages_body(**fields))
    message = assert_anthropic_error(response, 400, "invalid_request_error")
    assert message.startswith(f"{param}:") or param in message, message
    assert engine_calls(fake_engine) == before


async def test_a_schema_the_grammar_refuses_names_the_tools(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    fake_engine.fail_with = InvalidRequestError("The grammar compiler refused the schema.")
    response = await client.post(MESSAGES, json=tools_body(tool_choice={"type": "any"}))
    assert_anthropic_error(response, 400, "invalid_request_error", mentions="tools: ")


async def test_a_format_schema_the_grammar_refuses_is_named(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    fake_engine.fail_with = InvalidRequestError("The grammar compiler refused the schema.")
    output_config = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    response = await client.post(MESSAGES, json=messages_body(output_config=output_config))
    assert_anthropic_error(
        response, 400, "invalid_request_error", mentions="output_config.format.schema: "
    )

"""Tool calling on /v1/chat/completions, on the fake engine: the constraint sent to the engine,
the answer's shape (message.tool_calls, finish_reason), streamed tool-call deltas, history with
tool turns, the metric, and every bad input as a 4xx naming the field."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from service.engine.fake import FakeEngine
from tests.api.helpers import (
    CHAT,
    assert_rejected_before_the_engine,
    chat_body,
    make_app,
    serve,
    sse_json,
)
from tests.char_tokenizer import SPECIAL, make_tokenizer

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
]
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def tools_body(**fields: Any) -> dict[str, Any]:
    return chat_body("Weather in Paris?", tools=TOOLS, **fields)


async def test_named_choice_calls_that_function_with_valid_arguments(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    response = await client.post(CHAT, json=tools_body(tool_choice=NAMED))
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER)
    assert choice["message"]["content"] is None
    assert choice["finish_reason"] == "stop"  # OpenAI's for a forced function
    structured = fake_engine.requests[-1].options.structured
    assert structured is not None and structured.json_schema == WEATHER


@pytest.mark.parametrize("parallel", [True, False])
async def test_required_choice_calls_a_tool_and_finishes_with_tool_calls(
    client: httpx.AsyncClient, fake_engine: FakeEngine, parallel: bool
) -> None:
    response = await client.post(
        CHAT, json=tools_body(tool_choice="required", parallel_tool_calls=parallel)
    )
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER)
    structured = fake_engine.requests[-1].options.structured
    assert structured is not None and structured.json_schema is not None
    schema = structured.json_schema
    assert schema["type"] == "array" and schema["minItems"] == 1
    assert ("maxItems" in schema) is not parallel
    names = [item["properties"]["name"]["enum"] for item in schema["items"]["anyOf"]]
    assert names == [["get_weather"], ["get_time"]]


@pytest.mark.parametrize("choice", ["auto", "none", None])
async def test_auto_and_none_answer_in_text_without_a_parser_format(
    client: httpx.AsyncClient, fake_engine: FakeEngine, choice: str | None
) -> None:
    body = tools_body() if choice is None else tools_body(tool_choice=choice)
    response = await client.post(CHAT, json=body)
    choice_body = response.json()["choices"][0]
    assert "tool_calls" not in choice_body["message"]
    assert choice_body["message"]["content"]
    assert choice_body["finish_reason"] == "stop"
    assert fake_engine.requests[-1].options.structured is None


@pytest.mark.parametrize(
    "choice", [pytest.param(NAMED, id="named"), pytest.param("required", id="required")]
)
async def test_streamed_tool_call_reassembles_into_the_whole_one(
    client: httpx.AsyncClient, choice: Any
) -> None:
    whole = (await client.post(CHAT, json=tools_body(tool_choice=choice))).json()
    streamed = await client.post(CHAT, json=tools_body(tool_choice=choice, stream=True))
    chunks = sse_json(streamed.text)
    pieces = [
        call
        for c in chunks
        for ch in c["choices"]
        for call in (ch["delta"].get("tool_calls") or [])
    ]
    first, rest = pieces[0], pieces[1:]
    assert first["id"].startswith("call_") and first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert all("id" not in p and "name" not in p["function"] for p in rest)
    arguments = first["function"]["arguments"] + "".join(p["function"]["arguments"] for p in rest)
    (call,) = whole["choices"][0]["message"]["tool_calls"]
    assert arguments == call["function"]["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]


def hermes_engine(reply: str) -> FakeEngine:
    """The fake engine answering `reply`, read under `auto` by vLLM's hermes parser."""
    from service.engine.vllm.parsers import VLLMToolCallParser, load_tool_parser

    tokenizer = make_tokenizer(SPECIAL)
    parser = load_tool_parser("hermes", tokenizer)
    return FakeEngine(
        reply=reply, tool_parser=lambda tools: VLLMToolCallParser(parser, tokenizer, tools)
    )


def streamed_calls(chunks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for piece in choice["delta"].get("tool_calls") or []:
                if "id" in piece:
                    assert piece["id"].startswith("call_") and piece["index"] not in names
                    names[piece["index"]] = piece["function"]["name"]
                arguments[piece["index"]] = (
                    arguments.get(piece["index"], "") + piece["function"]["arguments"]
                )
    return [(names[i], arguments[i]) for i in sorted(names)]


CALL_PARIS = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
CALL_TOKYO = '<tool_call>{"name": "get_time", "arguments": {"city": "Tokyo"}}</tool_call>'


@pytest.mark.parametrize("parallel", [True, False])
async def test_auto_calls_are_read_by_the_tool_parser_whole_and_streamed(parallel: bool) -> None:
    async with serve(make_app(hermes_engine(f"Sure. {CALL_PARIS} {CALL_TOKYO}"))) as client:
        body = tools_body(parallel_tool_calls=parallel, max_tokens=64)
        whole = (await client.post(CHAT, json=body)).json()["choices"][0]
        chunks = sse_json((await client.post(CHAT, json=body | {"stream": True})).text)
    calls = [("get_weather", '{"city": "Paris"}'), ("get_time", '{"city": "Tokyo"}')]
    expected = calls if parallel else calls[:1]
    assert [
        (c["function"]["name"], c["function"]["arguments"]) for c in whole["message"]["tool_calls"]
    ] == expected
    assert whole["message"]["content"] == "Sure. "
    assert whole["finish_reason"] == "tool_calls"
    assert streamed_calls(chunks) == expected
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content == "Sure. "
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_auto_text_without_a_call_stays_content() -> None:
    async with serve(make_app(hermes_engine("It is sunny in Paris."))) as client:
        whole = (await client.post(CHAT, json=tools_body())).json()["choices"][0]
    assert whole["message"]["content"] == "It is sunny in Paris."
    assert "tool_calls" not in whole["message"] and whole["finish_reason"] == "stop"


async def test_history_with_tool_calls_and_results_is_accepted(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
    ]
    response = await client.post(CHAT, json=chat_body(tools=TOOLS) | {"messages": messages})
    assert response.status_code == 200, response.text
    prompt = fake_engine.tokenizer.decode(fake_engine.requests[-1].prompt_token_ids)
    assert "tools: get_weather get_time" in prompt and "tool: 21 C" in prompt


async def test_tool_calls_are_counted_by_outcome(client: httpx.AsyncClient) -> None:
    await client.post(CHAT, json=tools_body(tool_choice=NAMED))
    metrics = (await client.get("/metrics")).text
    assert 'gateway_tool_calls_total{outcome="parsed"} 1.0' in metrics


def _history(tool_call_id: str) -> list[dict[str, Any]]:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    return [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": tool_call_id, "content": "ok"},
    ]


BAD = [
    pytest.param(
        tools_body()
        | {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 3}}}]},
        400,
        "tools.0.function.parameters",
        id="invalid-parameters-schema",
    ),
    pytest.param(
        tools_body()
        | {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
            ]
        },
        400,
        "tools.0.function.parameters",
        id="parameters-not-an-object",
    ),
    pytest.param(
        tools_body(tool_choice={"type": "function", "function": {"name": "nope"}}),
        400,
        "tool_choice",
        id="named-unknown-function",
    ),
    pytest.param(chat_body(tool_choice="required"), 400, "tool_choice", id="choice-without-tools"),
    pytest.param(
        tools_body() | {"tools": [TOOLS[0], TOOLS[0]]},
        400,
        "tools.1.function.name",
        id="duplicate-names",
    ),
    pytest.param(
        chat_body() | {"messages": _history("call_2")},
        400,
        "messages.2.tool_call_id",
        id="tool-result-without-call",
    ),
    pytest.param(
        tools_body() | {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
        400,
        "tools.0.function.name",
        id="bad-function-name",
    ),
    pytest.param(tools_body(tool_choice="sometimes"), 400, "tool_choice", id="bad-choice"),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD)
async def test_bad_tool_requests_name_the_field(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    body: dict[str, Any],
    status: int,
    param: str,
) -> None:
    await assert_rejected_before_the_engine(client, fake_engine, CHAT, body, status, param=param)


async def test_too_many_tools_is_413(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine, max_tools=1)) as client:
        response = await client.post(CHAT, json=tools_body())
    assert response.status_code == 413, response.text
    assert response.json()["error"]["param"] == "tools"

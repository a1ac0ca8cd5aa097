"""Tool calling on the real engine with the default model, through the official openai client:
required and named choices give schema-valid arguments on every sampled request, a streamed
call reassembles into the non-streamed one, and a full round trip ends in an answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import openai
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TIME = {
    "type": "object",
    "properties": {"timezone": {"type": "string", "maxLength": 40}},
    "required": ["timezone"],
    "additionalProperties": False,
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": WEATHER,
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "description": "Time in a timezone", "parameters": TIME},
    },
]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
NAMED: Any = {"type": "function", "function": {"name": "get_weather"}}


def assert_valid(call: Any) -> None:
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


@pytest.mark.parametrize(
    "choice", [pytest.param(NAMED, id="named"), pytest.param("required", id="required")]
)
async def test_sampled_arguments_validate_20_of_20(
    async_client: openai.AsyncOpenAI, live_server: LiveServer, choice: Any
) -> None:
    async def one(seed: int) -> Any:
        return await async_client.chat.completions.create(
            model=live_server.model,
            messages=MESSAGES,
            tools=TOOLS,
            tool_choice=choice,
            temperature=1.0,
            seed=seed,
            max_tokens=200,
            # One call: with parallel calls allowed, a sampled 135M model may keep appending
            # calls until max_tokens (finish_reason length; the complete calls still return).
            parallel_tool_calls=False,
        )

    responses = await asyncio.gather(*(one(seed) for seed in range(20)))
    for response in responses:
        choice_out = response.choices[0]
        assert choice_out.message.tool_calls, choice_out
        for call in choice_out.message.tool_calls:
            assert call.id.startswith("call_")
            assert_valid(call)
        if choice == "required":
            assert choice_out.finish_reason == "tool_calls"
        else:
            assert choice_out.message.tool_calls[0].function.name == "get_weather"


@pytest.mark.parametrize(
    "choice", [pytest.param(NAMED, id="named"), pytest.param("required", id="required")]
)
def test_streamed_call_is_the_non_streamed_one(
    sync_client: openai.OpenAI, live_server: LiveServer, choice: Any
) -> None:
    fields: dict[str, Any] = {
        "model": live_server.model,
        "messages": MESSAGES,
        "tools": TOOLS,
        "tool_choice": choice,
        "temperature": 0.0,
        "max_tokens": 200,
        "parallel_tool_calls": False,
    }
    whole = sync_client.chat.completions.create(**fields)
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    finish = None
    for chunk in sync_client.chat.completions.create(**fields, stream=True):
        for choice_delta in chunk.choices:
            finish = choice_delta.finish_reason or finish
            for piece in choice_delta.delta.tool_calls or []:
                if piece.id is not None:
                    assert piece.id.startswith("call_") and piece.function is not None
                    names[piece.index] = piece.function.name or ""
                assert piece.function is not None
                arguments[piece.index] = arguments.get(piece.index, "") + (
                    piece.function.arguments or ""
                )
    expected = [
        (c.function.name, c.function.arguments) for c in whole.choices[0].message.tool_calls or []
    ]
    assert [(names[i], arguments[i]) for i in sorted(names)] == expected
    assert finish == whole.choices[0].finish_reason


def test_round_trip_tool_result_then_answer(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    first = sync_client.chat.completions.create(
        model=live_server.model,
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice="required",
        temperature=0.0,
    )
    message = first.choices[0].message
    assert message.tool_calls
    history: list[Any] = [
        *MESSAGES,
        message.model_dump(exclude_none=True),
        *(
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": '{"temperature": 21, "unit": "celsius"}',
            }
            for call in message.tool_calls
        ),
    ]
    final = sync_client.chat.completions.create(
        model=live_server.model, messages=history, tools=TOOLS, temperature=0.0, max_tokens=40
    )
    answer = final.choices[0]
    assert answer.finish_reason in ("stop", "length", "tool_calls")
    assert answer.message.content or answer.message.tool_calls


@pytest.mark.parametrize("parallel", [True, False])
def test_one_call_unless_parallel_calls_are_allowed(
    sync_client: openai.OpenAI, live_server: LiveServer, parallel: bool
) -> None:
    response = sync_client.chat.completions.create(
        model=live_server.model,
        messages=[
            {"role": "user", "content": "Weather in Paris and in London, and the time in Tokyo?"}
        ],
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=parallel,
        temperature=0.0,
        max_tokens=300,
    )
    choice = response.choices[0]
    calls = choice.message.tool_calls or []
    assert calls and all(c.id.startswith("call_") for c in calls)
    assert len({c.id for c in calls}) == len(calls)
    # Cut off by max_tokens, the last call is returned as far as it got.
    complete = calls if choice.finish_reason == "tool_calls" else calls[:-1]
    for call in complete:
        assert_valid(call)
    if not parallel:
        assert len(calls) == 1 and choice.finish_reason == "tool_calls"


def test_auto_answers_with_text_or_a_parsed_call(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    response = sync_client.chat.completions.create(
        model=live_server.model, messages=MESSAGES, tools=TOOLS, temperature=0.0, max_tokens=60
    )
    choice = response.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        names = set()
        for call in choice.message.tool_calls:
            assert call.type == "function"  # the gateway takes function tools only
            names.add(call.function.name)
        assert names <= set(SCHEMAS)
    else:
        assert choice.message.content


@pytest.mark.parametrize(
    "choice", [pytest.param(NAMED, id="named"), pytest.param("required", id="required")]
)
def test_a_schema_the_backend_cannot_compile_is_a_400(
    sync_client: openai.OpenAI, live_server: LiveServer, choice: Any
) -> None:
    # Valid JSON Schema, but a regex lookbehind the grammar compiler does not take.
    odd = {"type": "object", "properties": {"city": {"type": "string", "pattern": "(?<=a)b"}}}
    tools: list[Any] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": odd}}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        sync_client.chat.completions.create(
            model=live_server.model, messages=MESSAGES, tools=tools, tool_choice=choice
        )
    assert caught.value.param == "tools"

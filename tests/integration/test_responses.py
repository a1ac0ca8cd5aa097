"""The Responses API on the real engine through the official openai SDK, unchanged:
`client.responses.create(...)` and `client.responses.stream(...)`, json_schema output, function
tools, `previous_response_id` continuation and the 404 for an unknown id."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 40}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": CITY,
    }
]


def test_create(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    response = sync_client.responses.create(
        model=live_server.model,
        instructions="Answer in one short sentence.",
        input="What is the capital of France?",
        max_output_tokens=24,
        temperature=0.0,
    )
    assert response.id.startswith("resp_") and response.status in ("completed", "incomplete")
    assert response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0


def test_stream_events_in_order_and_the_final_response(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    kinds: list[str] = []
    text = ""
    final: Any = None
    with sync_client.responses.stream(
        model=live_server.model, input="Say hello.", max_output_tokens=64, temperature=0.0
    ) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type in ("response.completed", "response.incomplete"):
                final = event.response  # OpenAI ends a cut-off answer with response.incomplete
        if kinds[-1] == "response.completed":
            assert stream.get_final_response().output_text == text
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert final is not None and final.output_text == text and text


def test_json_schema_output(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    response = sync_client.responses.create(
        model=live_server.model,
        input="Name the capital of France as JSON.",
        text={"format": {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}},
        max_output_tokens=60,
        temperature=0.0,
    )
    jsonschema.validate(json.loads(response.output_text), CITY)


def test_function_tools_then_continue_with_the_output(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    first = sync_client.responses.create(
        model=live_server.model,
        input="What is the weather in Paris?",
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0.0,
        max_output_tokens=60,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    jsonschema.validate(json.loads(calls[0].arguments), CITY)
    second = sync_client.responses.create(
        model=live_server.model,
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "21 C, sunny"}
        ],
        tools=TOOLS,
        temperature=0.0,
        max_output_tokens=40,
    )
    assert second.previous_response_id == first.id
    assert second.output
    assert sync_client.responses.retrieve(second.id).id == second.id


def test_unknown_previous_response_id_is_404(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sync_client.responses.create(
            model=live_server.model, input="hi", previous_response_id="resp_unknown"
        )
    assert caught.value.code == "not_found"

"""Anthropic's Messages API on the real engine, through the official `anthropic` SDK: create and
stream (the event order, and the SDK's accumulator rebuilding the same message), forced and
`any` tool choices with schema-valid inputs, a tool_result round trip, count_tokens,
max_tokens clamped to the context, x-api-key authentication, errors in Anthropic's shape, and a
stream left by its client freeing the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest

from service.app import create_app
from service.config import TEST_PROFILE, Settings
from tests.api.helpers import until
from tests.integration.conftest import Borrowed, LiveServer
from tests.servers import serve_on

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
    {"name": "get_weather", "description": "Weather in a city", "input_schema": WEATHER},
    {"name": "get_time", "description": "Time in a timezone", "input_schema": TIME},
]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
QUESTION: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
KEY = "sk-real-engine-anthropic"


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live_server.base_url, api_key="unused", max_retries=0)


@pytest.fixture
def async_client(live_server: LiveServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=live_server.base_url, api_key="unused", max_retries=0)


def test_create_then_the_same_message_streamed(
    client: anthropic.Anthropic, live_server: LiveServer
) -> None:
    fields: dict[str, Any] = {
        "model": live_server.model,
        "max_tokens": 24,
        "system": "Answer briefly.",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "extra_body": {"temperature": 0.0},
    }
    whole = client.messages.create(**fields)
    assert whole.id.startswith("msg_") and whole._request_id
    assert whole.content[0].type == "text" and whole.content[0].text
    assert whole.stop_reason in ("end_turn", "max_tokens")
    counted = client.messages.count_tokens(
        model=live_server.model, system=fields["system"], messages=fields["messages"]
    )
    assert whole.usage.input_tokens == counted.input_tokens

    with client.messages.stream(**fields) as stream:
        kinds = [event.type for event in stream]
        streamed = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[1] == "content_block_start" and kinds[-3] == "content_block_stop"
    assert kinds[-2] == "message_delta"
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]
    assert (streamed.stop_reason, streamed.usage.output_tokens) == (
        whole.stop_reason,
        whole.usage.output_tokens,
    )


def test_the_raw_event_stream(client: anthropic.Anthropic, live_server: LiveServer) -> None:
    events = list(
        client.messages.create(
            model=live_server.model,
            max_tokens=8,
            messages=[{"role": "user", "content": "Count to five."}],
            stream=True,
        )
    )
    kinds = [event.type for event in events]
    deltas = kinds[2:-3]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert deltas and set(deltas) == {"content_block_delta"}
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    final = events[-2]
    assert final.type == "message_delta"
    tokens = final.usage.output_tokens
    assert 1 <= tokens <= 8
    assert final.delta.stop_reason == ("max_tokens" if tokens == 8 else "end_turn")


@pytest.mark.parametrize(
    "choice",
    [
        pytest.param({"type": "tool", "name": "get_weather"}, id="tool"),
        pytest.param({"type": "any", "disable_parallel_tool_use": True}, id="any"),
    ],
)
async def test_sampled_inputs_validate_10_of_10(
    async_client: anthropic.AsyncAnthropic, live_server: LiveServer, choice: Any
) -> None:
    async def one(seed: int) -> anthropic.types.Message:
        return await async_client.messages.create(
            model=live_server.model,
            max_tokens=200,
            messages=QUESTION,
            tools=TOOLS,
            tool_choice=choice,
            extra_body={"temperature": 1.0, "top_k": 50 + seed},
        )

    for message in await asyncio.gather(*(one(seed) for seed in range(10))):
        (call,) = [block for block in message.content if block.type == "tool_use"]
        assert call.id.startswith("toolu_")
        jsonschema.validate(call.input, SCHEMAS[call.name])
        assert message.stop_reason == "tool_use"
        if choice["type"] == "tool":
            assert call.name == "get_weather"


def test_a_streamed_call_is_the_created_one(
    client: anthropic.Anthropic, live_server: LiveServer
) -> None:
    fields: dict[str, Any] = {
        "model": live_server.model,
        "max_tokens": 200,
        "messages": QUESTION,
        "tools": TOOLS,
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "extra_body": {"temperature": 0.0},
    }
    whole = client.messages.create(**fields)
    with client.messages.stream(**fields) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        streamed = stream.get_final_message()
    assert set(deltas) == {"input_json_delta"}
    (expected,) = whole.content
    (got,) = streamed.content
    assert expected.type == got.type == "tool_use"
    assert (got.name, got.input) == (expected.name, expected.input)
    assert streamed.stop_reason == whole.stop_reason == "tool_use"


def test_a_tool_result_round_trip(client: anthropic.Anthropic, live_server: LiveServer) -> None:
    first = client.messages.create(
        model=live_server.model,
        max_tokens=200,
        messages=QUESTION,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_weather"},
        extra_body={"temperature": 0.0},
    )
    (call,) = first.content
    assert call.type == "tool_use"
    final = client.messages.create(
        model=live_server.model,
        max_tokens=40,
        messages=[
            *QUESTION,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": '{"temperature": 21, "unit": "celsius"}',
                    }
                ],
            },
        ],
        tools=TOOLS,
        extra_body={"temperature": 0.0},
    )
    assert final.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert final.content and final.content[0].type in ("text", "tool_use")


def test_count_tokens_counts_tools_and_system(
    client: anthropic.Anthropic, live_server: LiveServer
) -> None:
    plain = client.messages.count_tokens(model=live_server.model, messages=QUESTION)
    full = client.messages.count_tokens(
        model=live_server.model, messages=QUESTION, system="Be brief.", tools=TOOLS
    )
    assert full.input_tokens > plain.input_tokens > 0
    created = client.messages.create(
        model=live_server.model,
        max_tokens=1,
        messages=QUESTION,
        system="Be brief.",
        tools=TOOLS,
        tool_choice={"type": "auto"},
    )
    assert created.usage.input_tokens == full.input_tokens


def test_max_tokens_is_clamped_to_the_room_left_in_the_context(
    client: anthropic.Anthropic, live_server: LiveServer
) -> None:
    context = live_server.settings.max_model_len
    assert context is not None
    words = "one two three four five six seven eight nine ten " * 400
    prompt: list[Any] = [{"role": "user", "content": f"Continue this list: {words}"}]
    # Find a prompt that leaves a few tokens of room (the count is the exact prompt).
    while client.messages.count_tokens(model=live_server.model, messages=prompt).input_tokens > (
        context - 6
    ):
        words = words[: int(len(words) * 0.95)]
        prompt = [{"role": "user", "content": f"Continue this list: {words}"}]
    message = client.messages.create(
        model=live_server.model,
        max_tokens=32_000,
        messages=prompt,
        extra_body={"temperature": 0.0},
        timeout=600,  # else the SDK asks for streaming, from max_tokens alone
    )
    room = context - message.usage.input_tokens
    assert message.usage.output_tokens <= room
    if message.usage.output_tokens == room:
        assert message.stop_reason == "model_context_window_exceeded"
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(
            model=live_server.model,
            max_tokens=16,
            messages=[{"role": "user", "content": words * 3}],
        )
    assert raised.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_errors_in_anthropics_shape(client: anthropic.Anthropic, live_server: LiveServer) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="claude-opus-4-5", max_tokens=8, messages=QUESTION)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert missing.value.request_id
    with pytest.raises(anthropic.BadRequestError) as unknown:
        client.messages.create(
            model=live_server.model, max_tokens=8, messages=QUESTION, extra_body={"top_n": 1}
        )
    assert "top_n" in unknown.value.message
    with pytest.raises(anthropic.BadRequestError) as server_tool:
        client.messages.create(
            model=live_server.model,
            max_tokens=8,
            messages=QUESTION,
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
        )
    assert "tools.0.type" in server_tool.value.message


@pytest.fixture
def keyed_server(live_server: LiveServer) -> Iterator[str]:
    """An app with an API key on the session's engine (and its loop)."""
    engine = live_server.state.engine
    assert engine is not None
    app = create_app(
        Settings(**TEST_PROFILE, api_keys=[KEY]), engine_factory=lambda: Borrowed(engine)
    )
    with serve_on(app, live_server.loop) as url:
        yield url


def test_x_api_key_authenticates(keyed_server: str, live_server: LiveServer) -> None:
    keyed = anthropic.Anthropic(base_url=keyed_server, api_key=KEY, max_retries=0)
    message = keyed.messages.create(model=live_server.model, max_tokens=4, messages=QUESTION)
    assert message.content
    wrong = anthropic.Anthropic(base_url=keyed_server, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as raised:
        wrong.messages.create(model=live_server.model, max_tokens=4, messages=QUESTION)
    assert raised.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "sk-wrong" not in str(raised.value.body)


def engine_busy(base_url: str) -> float:
    """vLLM's running + waiting requests, from the shared /metrics page."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("vllm:num_requests_running", "vllm:num_requests_waiting")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_stream_left_by_its_client_frees_the_engine(live_server: LiveServer) -> None:
    body = {
        "model": live_server.model,
        "max_tokens": 1500,
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "stream": True,
    }
    with httpx.stream("POST", f"{live_server.base_url}/v1/messages", json=body, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line == "event: content_block_delta":
                break  # the first token arrived: leave
    asyncio.run(until(lambda: engine_busy(live_server.base_url) == 0, "the engine is idle"))

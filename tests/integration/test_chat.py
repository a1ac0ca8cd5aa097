"""/v1/chat/completions on the real engine, through the official openai client."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France?"}
]


def test_greedy_answer_mentions_paris(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model, messages=QUESTION, temperature=0, max_tokens=32
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == live_server.model
    usage = reply.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 < usage.completion_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_max_tokens_cuts_with_length(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        temperature=0,
        max_tokens=7,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 7


async def test_stream_matches_non_stream(
    async_client: openai.AsyncOpenAI, live_server: LiveServer
) -> None:
    whole = await async_client.chat.completions.create(
        model=live_server.model, messages=QUESTION, temperature=0, max_tokens=32
    )
    stream = await async_client.chat.completions.create(
        model=live_server.model,
        messages=QUESTION,
        temperature=0,
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage, roles = [], None, None, []
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            roles.append(choice.delta.role)
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert roles[0] == "assistant"
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "stop"
    assert usage is not None and whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_sync_stream(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    stream = sync_client.chat.completions.create(
        model=live_server.model, messages=QUESTION, temperature=0, max_tokens=32, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "Paris" in text


def test_stop_sequence(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model, messages=QUESTION, temperature=0, max_tokens=32, stop=["Paris"]
    )
    content = reply.choices[0].message.content or ""
    assert "Paris" not in content
    assert content.startswith("The capital of France is")
    assert reply.choices[0].finish_reason == "stop"


def test_n_choices(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model, messages=QUESTION, temperature=1.0, seed=7, max_tokens=8, n=3
    )
    assert sorted(c.index for c in reply.choices) == [0, 1, 2]
    assert reply.usage is not None
    tokens = reply.usage.completion_tokens
    assert 3 <= tokens <= 24


def test_logprobs(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model,
        messages=QUESTION,
        temperature=0,
        max_tokens=8,
        logprobs=True,
        top_logprobs=3,
    )
    choice = reply.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    entries = choice.logprobs.content
    assert reply.usage is not None and len(entries) == reply.usage.completion_tokens
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert entry.top_logprobs[0].token == entry.token
    assert "".join(e.token for e in entries).startswith(choice.message.content or "\0")


def test_json_schema_response_parses(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    reply = sync_client.chat.completions.create(
        model=live_server.model,
        messages=[{"role": "user", "content": "Give the capital of France as JSON."}],
        temperature=0,
        max_tokens=64,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "capital", "schema": schema, "strict": True},
        },
    )
    data = json.loads(reply.choices[0].message.content or "")
    assert set(data) == {"city", "country"}
    assert all(isinstance(v, str) for v in data.values())


def test_json_object_response_parses(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model,
        messages=[{"role": "user", "content": "Describe Paris in JSON."}],
        temperature=0,
        max_tokens=48,
        response_format={"type": "json_object"},
    )
    content = reply.choices[0].message.content or ""
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)
    else:  # cut by max_tokens: still a JSON object so far
        assert content.lstrip().startswith("{")


def test_vllm_extensions_accepted(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model,
        messages=QUESTION,
        temperature=0,
        max_tokens=6,
        extra_body={
            "top_k": 5,
            "min_p": 0.05,
            "repetition_penalty": 1.1,
            "min_tokens": 6,
            "ignore_eos": True,
        },
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 6
    assert reply.choices[0].finish_reason == "length"


def test_structured_outputs_choice(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.chat.completions.create(
        model=live_server.model,
        messages=[{"role": "user", "content": "Is Paris in France? Answer yes or no."}],
        temperature=0,
        max_tokens=5,
        extra_body={"structured_outputs": {"choice": ["yes", "no"]}},
    )
    assert reply.choices[0].message.content in {"yes", "no"}

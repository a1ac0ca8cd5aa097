"""/v1/completions on the real engine, through the official openai client."""

from __future__ import annotations

import openai
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

PROMPT = "The capital of France is"


def test_greedy_completion(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.completions.create(
        model=live_server.model, prompt=PROMPT, temperature=0, max_tokens=5
    )
    assert "Paris" in reply.choices[0].text
    assert reply.usage is not None
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_token_prompt_counts_usage(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    ids = [504, 3575, 282, 4649, 314]  # "The capital of France is" in SmolLM2's vocabulary
    reply = sync_client.completions.create(
        model=live_server.model,
        prompt=ids,
        temperature=0,
        max_tokens=4,
        extra_body={"ignore_eos": True},
    )
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == len(ids)
    assert reply.usage.completion_tokens == 4


def test_prompt_list_and_n(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.completions.create(
        model=live_server.model,
        prompt=[PROMPT, "1, 2, 3,"],
        temperature=0.8,
        seed=1,
        n=2,
        max_tokens=4,
        extra_body={"ignore_eos": True},
    )
    assert sorted(c.index for c in reply.choices) == [0, 1, 2, 3]
    assert reply.usage is not None and reply.usage.completion_tokens == 16


def test_echo_with_logprobs(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    reply = sync_client.completions.create(
        model=live_server.model, prompt=PROMPT, temperature=0, max_tokens=3, echo=True, logprobs=2
    )
    choice = reply.choices[0]
    assert choice.text.startswith(PROMPT)
    assert choice.logprobs is not None
    tokens = choice.logprobs.tokens or []
    assert reply.usage is not None
    assert len(tokens) == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert (choice.logprobs.token_logprobs or [])[0] is None  # the first prompt token
    assert "".join(tokens) == choice.text


def test_stream_with_usage(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    whole = sync_client.completions.create(
        model=live_server.model, prompt=PROMPT, temperature=0, max_tokens=12
    )
    stream = sync_client.completions.create(
        model=live_server.model,
        prompt=PROMPT,
        temperature=0,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == whole.choices[0].finish_reason


async def test_async_concurrent_requests(
    async_client: openai.AsyncOpenAI, live_server: LiveServer
) -> None:
    import asyncio

    replies = await asyncio.gather(
        *(
            async_client.completions.create(
                model=live_server.model, prompt=PROMPT, temperature=0, max_tokens=5
            )
            for _ in range(6)
        )
    )
    # Batched together by the engine, greedy answers are still identical.
    assert len({r.choices[0].text for r in replies}) == 1


def test_stop_and_include_stop(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    plain = sync_client.completions.create(
        model=live_server.model, prompt="1, 2, 3, 4,", temperature=0, max_tokens=12, stop=["7"]
    )
    kept = sync_client.completions.create(
        model=live_server.model,
        prompt="1, 2, 3, 4,",
        temperature=0,
        max_tokens=12,
        stop=["7"],
        extra_body={"include_stop_str_in_output": True},
    )
    assert plain.choices[0].finish_reason == "stop"
    assert "7" not in plain.choices[0].text
    assert kept.choices[0].text == plain.choices[0].text + "7"

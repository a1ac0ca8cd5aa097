"""Every task method, sync and async, streaming and not, against a real gateway (fake engine).

The fake engine answers every prompt with DEFAULT_REPLY, one word-token at a time.
"""

from __future__ import annotations

import pytest

from llm_gateway import AsyncClient, AsyncTaskStream, Client, TaskStream
from llm_gateway.types import (
    ChatResponse,
    ChatTurn,
    ClassifyResponse,
    GenerateResponse,
    LabelledExample,
    SummarizeResponse,
    TaskChunk,
)
from service.engine.fake import DEFAULT_REPLY
from service.schemas import tasks as schemas
from tests.client.conftest import FakeGateway
from tests.conftest import FAKE_MODEL

PROMPT = "Once upon a time"
REQUEST_ID = "client-sdk-test-1"


def joined(chunks: list[TaskChunk], index: int = 0, sequence: int = 0) -> str:
    return "".join(
        d.delta for c in chunks for d in c.results if (d.index, d.sequence) == (index, sequence)
    )


def assert_stream_shape(chunks: list[TaskChunk], obj: str, request_id: str | None) -> None:
    assert chunks, "no chunk"
    assert {c.object for c in chunks} == {obj}
    assert len({c.id for c in chunks}) == 1
    assert all(c.request_id == request_id for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    finishes = [d.finish_reason for c in chunks for d in c.results if d.finish_reason]
    assert finishes == ["stop"]


# --------------------------------------------------------------------------- sync
def test_generate(client: Client) -> None:
    result = client.tasks.generate(
        prompt=PROMPT, max_new_tokens=3, extra_headers={"x-request-id": REQUEST_ID}
    )
    assert isinstance(result, GenerateResponse)
    assert isinstance(result, schemas.GenerateResponse)  # the server's own model
    assert result.request_id == REQUEST_ID
    assert result.object == "generate" and result.model == FAKE_MODEL
    (only,) = result.results
    assert only.generations[0].text == "The capital of"
    assert only.generations[0].finish_reason == "length"
    assert only.prompt_tokens == 4
    assert result.usage.completion_tokens == 3
    assert "request_id" not in result.model_dump()


def test_generate_batch_and_sampling(client: Client) -> None:
    result = client.tasks.generate(
        prompts=(PROMPT, "Hello there"), do_sample=True, temperature=0.7, top_k=20, seed=1
    )
    assert [r.index for r in result.results] == [0, 1]
    assert all(r.generations[0].text == DEFAULT_REPLY for r in result.results)
    assert result.request_id  # the gateway makes one when the client sends none


def test_generate_stream(client: Client) -> None:
    with client.tasks.generate(prompt=PROMPT, stream=True) as stream:
        assert isinstance(stream, TaskStream)
        chunks = list(stream)
    assert stream.request_id
    assert_stream_shape(chunks, "generate.chunk", stream.request_id)
    assert joined(chunks) == DEFAULT_REPLY
    assert isinstance(chunks[0], schemas.TaskChunk)


def test_generate_stream_batch(client: Client) -> None:
    chunks = list(client.tasks.generate(prompts=[PROMPT, "Hi"], stream=True))
    assert joined(chunks, 0) == joined(chunks, 1) == DEFAULT_REPLY


def test_summarize(client: Client) -> None:
    result = client.tasks.summarize(
        text="The council met on Tuesday. It voted on the budget.",
        style="bullets",
        max_length=40,
        focus="the vote",
        extra_headers={"x-request-id": REQUEST_ID},
    )
    assert isinstance(result, SummarizeResponse)
    assert isinstance(result, schemas.SummarizeResponse)
    assert result.request_id == REQUEST_ID
    (only,) = result.results
    assert only.summary and only.chunks == 1 and only.depth == 0


def test_summarize_batch(client: Client) -> None:
    result = client.tasks.summarize(texts=["First text.", "Second text."], max_length=20)
    assert [r.index for r in result.results] == [0, 1]


def test_classify(client: Client) -> None:
    result = client.tasks.classify(
        texts=["I love it", "It broke"],
        labels=["good", "bad"],
        label_descriptions={"good": "happy", "bad": "unhappy"},
        examples=[LabelledExample(text="great", label="good"), {"text": "awful", "label": "bad"}],
    )
    assert isinstance(result, ClassifyResponse)
    assert isinstance(result, schemas.ClassifyResponse)
    assert [r.index for r in result.results] == [0, 1]
    for r in result.results:
        assert r.label in ("good", "bad")
        assert list(r.scores) == ["good", "bad"]
        assert sum(r.scores.values()) == pytest.approx(1.0)


def test_classify_preset_multi_label(client: Client) -> None:
    result = client.tasks.classify(
        text="Where is my order?", labels="customer_intent", multi_label=True
    )
    (only,) = result.results
    assert only.labels is not None


def test_chat(client: Client) -> None:
    result = client.tasks.chat(
        message="Where is my order?",
        history=[ChatTurn(role="user", content="Hi"), {"role": "assistant", "content": "Hello!"}],
        preset="customer_service",
        max_tokens=8,
        extra_headers={"x-request-id": REQUEST_ID},
    )
    assert isinstance(result, ChatResponse)
    assert isinstance(result, schemas.ChatResponse)
    assert result.request_id == REQUEST_ID
    assert result.results[0].reply == DEFAULT_REPLY
    assert result.results[0].truncated_turns == 0


def test_chat_messages(client: Client) -> None:
    result = client.tasks.chat(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        temperature=0,
    )
    assert result.results[0].reply == DEFAULT_REPLY


def test_chat_stream(client: Client) -> None:
    with client.tasks.chat(
        message="Hi", system="Be brief.", stream=True, extra_headers={"x-request-id": REQUEST_ID}
    ) as stream:
        chunks = list(stream)
    assert stream.request_id == REQUEST_ID
    assert_stream_shape(chunks, "chat.chunk", REQUEST_ID)
    assert joined(chunks) == DEFAULT_REPLY


def test_language_reaches_the_server(client: Client, gateway: FakeGateway) -> None:
    before = len(gateway.engine.requests)
    client.tasks.chat(message="Hi", language="zh", max_tokens=4)
    client.tasks.generate(prompt=PROMPT, language="zh", max_new_tokens=4)
    for request in gateway.engine.requests[before:]:
        # Each decoded under the script constraint for Chinese.
        structured = request.options.structured
        assert structured is not None and structured.grammar is not None


def test_with_options_keeps_tasks(client: Client) -> None:
    other = client.with_options(timeout=30, max_retries=1)
    assert isinstance(other, Client)
    assert other.tasks.chat(message="Hi").results[0].reply == DEFAULT_REPLY


def test_extra_body_reaches_the_server(client: Client) -> None:
    result = client.tasks.generate(prompt=PROMPT, extra_body={"max_new_tokens": 2})
    assert result.results[0].generations[0].num_tokens == 2


# --------------------------------------------------------------------------- async
async def test_async_generate(async_client: AsyncClient) -> None:
    result = await async_client.tasks.generate(
        prompt=PROMPT, max_new_tokens=3, extra_headers={"x-request-id": REQUEST_ID}
    )
    assert isinstance(result, GenerateResponse)
    assert result.request_id == REQUEST_ID
    assert result.results[0].generations[0].text == "The capital of"


async def test_async_generate_stream(async_client: AsyncClient) -> None:
    stream = await async_client.tasks.generate(prompt=PROMPT, stream=True)
    assert isinstance(stream, AsyncTaskStream)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert_stream_shape(chunks, "generate.chunk", stream.request_id)
    assert joined(chunks) == DEFAULT_REPLY


async def test_async_summarize(async_client: AsyncClient) -> None:
    result = await async_client.tasks.summarize(text="A long report.", max_length=20)
    assert isinstance(result, SummarizeResponse)
    assert result.results[0].summary
    assert result.request_id


async def test_async_classify(async_client: AsyncClient) -> None:
    result = await async_client.tasks.classify(text="I love it", labels="sentiment")
    assert isinstance(result, ClassifyResponse)
    assert result.results[0].label in ("positive", "negative", "neutral")


async def test_async_chat(async_client: AsyncClient) -> None:
    result = await async_client.tasks.chat(message="Hi", preset="assistant")
    assert isinstance(result, ChatResponse)
    assert result.results[0].reply == DEFAULT_REPLY


async def test_async_chat_stream(async_client: AsyncClient) -> None:
    stream = await async_client.tasks.chat(
        message="Hi", stream=True, extra_headers={"x-request-id": REQUEST_ID}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert stream.request_id == REQUEST_ID
    assert_stream_shape(chunks, "chat.chunk", REQUEST_ID)
    assert joined(chunks) == DEFAULT_REPLY

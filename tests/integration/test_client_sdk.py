"""The client SDK and the official openai SDK against the real engine, over HTTP.

`llm_gateway.Client` / `AsyncClient`: every task method, streaming and not; the official
`openai` clients: chat completions and completions, streaming and not, on the same server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from llm_gateway import AsyncClient, Client, StreamError
from llm_gateway.types import (
    ChatResponse,
    ClassifyResponse,
    GenerateResponse,
    SummarizeResponse,
    TaskChunk,
)
from service.schemas import tasks as schemas
from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

CAPITAL = "The capital of France is"
QUESTION = "What is the capital of France?"
REPORT = (
    "The city council met on Tuesday to vote on the new budget. After a long debate, the "
    "budget passed by seven votes to two. It funds two new parks and a library extension."
)


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(base_url=f"{live_server.base_url}/v1", max_retries=0, timeout=600) as client:
        yield client


@pytest.fixture
async def aclient(live_server: LiveServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        base_url=f"{live_server.base_url}/v1", max_retries=0, timeout=600
    ) as client:
        yield client


def text_of(chunks: list[TaskChunk], index: int = 0) -> str:
    return "".join(d.delta for c in chunks for d in c.results if d.index == index)


def assert_stream(chunks: list[TaskChunk], request_id: str | None) -> None:
    assert chunks and request_id
    assert all(c.request_id == request_id for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [d.finish_reason for c in chunks for d in c.results if d.finish_reason] in (
        ["stop"],
        ["length"],
    )


# --------------------------------------------------------------------------- llm_gateway, sync
def test_generate(client: Client, live_server: LiveServer) -> None:
    result = client.tasks.generate(prompt=CAPITAL, max_new_tokens=8)
    assert isinstance(result, GenerateResponse) and isinstance(result, schemas.GenerateResponse)
    assert result.model == live_server.model
    assert "Paris" in result.results[0].generations[0].text
    assert result.request_id
    assert result.usage.completion_tokens == result.results[0].generations[0].num_tokens


def test_generate_stream_matches_the_answer(client: Client) -> None:
    whole = client.tasks.generate(prompt=CAPITAL, max_new_tokens=8)
    with client.tasks.generate(prompt=CAPITAL, max_new_tokens=8, stream=True) as stream:
        chunks = list(stream)
    assert_stream(chunks, stream.request_id)
    assert text_of(chunks) == whole.results[0].generations[0].text  # greedy: the same text


def test_summarize(client: Client) -> None:
    result = client.tasks.summarize(text=REPORT, style="headline", max_length=24)
    assert isinstance(result, SummarizeResponse)
    only = result.results[0]
    assert only.summary.strip() and only.summary_tokens <= 24 and only.chunks == 1
    assert result.request_id


def test_classify(client: Client) -> None:
    result = client.tasks.classify(
        texts=["I absolutely love this phone!", "It broke after one day. Terrible."],
        labels=["positive", "negative"],
    )
    assert isinstance(result, ClassifyResponse)
    assert [r.label for r in result.results] == ["positive", "negative"]
    for r in result.results:
        assert sum(r.scores.values()) == pytest.approx(1.0)


def test_chat(client: Client) -> None:
    result = client.tasks.chat(message=QUESTION, temperature=0, max_tokens=16)
    assert isinstance(result, ChatResponse)
    assert "Paris" in result.results[0].reply
    assert result.request_id


def test_chat_stream_matches_the_answer(client: Client) -> None:
    whole = client.tasks.chat(message=QUESTION, temperature=0, max_tokens=12)
    with client.tasks.chat(message=QUESTION, temperature=0, max_tokens=12, stream=True) as stream:
        chunks = list(stream)
    assert_stream(chunks, stream.request_id)
    assert text_of(chunks) == whole.results[0].reply


def test_a_400_raises_with_the_servers_message(client: Client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.tasks.generate(prompt=CAPITAL, num_beams=2, do_sample=True)
    err = caught.value
    assert err.status_code == 400 and err.code == "invalid_combination"
    assert isinstance(err.body, dict) and "num_beams" in err.body["message"]
    assert err.body["message"] in str(err)
    assert err.request_id


def test_a_context_overflow_is_a_400(client: Client, live_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.tasks.generate(
            prompt=CAPITAL, max_new_tokens=live_server.settings.max_model_len or 2048
        )
    assert caught.value.code in ("context_length_exceeded", "invalid_value")
    assert "context" in caught.value.message.lower() or caught.value.param


# --------------------------------------------------------------------------- llm_gateway, async
async def test_async_generate_and_stream(aclient: AsyncClient) -> None:
    whole = await aclient.tasks.generate(prompt=CAPITAL, max_new_tokens=8)
    assert "Paris" in whole.results[0].generations[0].text
    stream = await aclient.tasks.generate(prompt=CAPITAL, max_new_tokens=8, stream=True)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert_stream(chunks, stream.request_id)
    assert text_of(chunks) == whole.results[0].generations[0].text


async def test_async_summarize(aclient: AsyncClient) -> None:
    result = await aclient.tasks.summarize(text=REPORT, max_length=24)
    assert result.results[0].summary.strip()


async def test_async_classify(aclient: AsyncClient) -> None:
    result = await aclient.tasks.classify(text="I love it, best purchase ever!", labels="sentiment")
    assert result.results[0].label == "positive"


async def test_async_chat_and_stream(aclient: AsyncClient) -> None:
    whole = await aclient.tasks.chat(message=QUESTION, temperature=0, max_tokens=12)
    assert "Paris" in whole.results[0].reply
    stream = await aclient.tasks.chat(message=QUESTION, temperature=0, max_tokens=12, stream=True)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert_stream(chunks, stream.request_id)
    assert text_of(chunks) == whole.results[0].reply


async def test_async_400(aclient: AsyncClient) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await aclient.tasks.chat(message=QUESTION, stop=[""])
    assert caught.value.param is not None and caught.value.request_id


def test_stream_error_type_is_an_openai_error() -> None:
    assert issubclass(StreamError, openai.APIError)


# --------------------------------------------------------------------------- the official SDK
@pytest.fixture(scope="module")
def official(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("sdk", ["openai", "llm_gateway"])
def test_chat_completions(
    sdk: str, official: openai.OpenAI, client: Client, live_server: LiveServer
) -> None:
    chosen = official if sdk == "openai" else client
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": QUESTION}
    ]
    reply = chosen.chat.completions.create(
        model=live_server.model, messages=messages, temperature=0, max_tokens=16
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply._request_id
    pieces = []
    usage = None
    for chunk in chosen.chat.completions.create(
        model=live_server.model,
        messages=messages,
        temperature=0,
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        usage = chunk.usage or usage
    assert "".join(pieces) == reply.choices[0].message.content
    assert usage is not None and usage.completion_tokens == reply.usage.completion_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize("sdk", ["openai", "llm_gateway"])
def test_completions(
    sdk: str, official: openai.OpenAI, client: Client, live_server: LiveServer
) -> None:
    chosen = official if sdk == "openai" else client
    completion = chosen.completions.create(
        model=live_server.model, prompt=CAPITAL, temperature=0, max_tokens=8
    )
    assert "Paris" in completion.choices[0].text
    streamed = "".join(
        piece.choices[0].text
        for piece in chosen.completions.create(
            model=live_server.model, prompt=CAPITAL, temperature=0, max_tokens=8, stream=True
        )
        if piece.choices
    )
    assert streamed == completion.choices[0].text


async def test_async_official_sdk(live_server: LiveServer) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0
    ) as official_async:
        reply = await official_async.chat.completions.create(
            model=live_server.model,
            messages=[{"role": "user", "content": QUESTION}],
            temperature=0,
            max_tokens=16,
        )
        assert "Paris" in (reply.choices[0].message.content or "")
        stream = await official_async.completions.create(
            model=live_server.model, prompt=CAPITAL, temperature=0, max_tokens=8, stream=True
        )
        text = "".join([p.choices[0].text async for p in stream if p.choices])
        assert "Paris" in text

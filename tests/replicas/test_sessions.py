"""Two real gateway processes (fake engine) on one real PostgreSQL, through the official openai
SDK: a response made on one is read, continued and deleted on the other; a conversation made on
one is used on the other; a background stream made on one is retrieved and replayed on the
other; and a replica that was killed comes back to the same store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest
from openai.types.responses import ResponseCreatedEvent

from tests.processes import ServerProcess, server_process

MODEL = "fake"


def replica_env(database_url: str) -> dict[str, str]:
    return {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_RESPONSE_STREAM_POLL_SECONDS": "0.05"}


@contextmanager
def fake_replica(tmp: Path, database_url: str) -> Iterator[ServerProcess]:
    flags = ("--engine", "fake", "--served-model-name", MODEL)
    with server_process(tmp, *flags, env=replica_env(database_url)) as server:
        yield server


def sdk(server: ServerProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
async def pair(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[ServerProcess, ...]]:
    with fake_replica(tmp_path, postgres_url) as a, fake_replica(tmp_path, postgres_url) as b:
        yield a, b


async def test_a_response_made_on_one_replica_is_continued_on_the_other(
    pair: tuple[ServerProcess, ...],
) -> None:
    one, other = (sdk(server) for server in pair)
    first = await one.responses.create(model=MODEL, input="What is the capital of France?")
    assert (await other.responses.retrieve(first.id)).output_text == first.output_text
    second = await other.responses.create(
        model=MODEL, input="And of Italy?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id and second.output_text
    await other.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        await one.responses.retrieve(first.id)


async def test_a_conversation_made_on_one_replica_is_used_on_the_other(
    pair: tuple[ServerProcess, ...],
) -> None:
    one, other = (sdk(server) for server in pair)
    conversation = await one.conversations.create(
        items=[{"type": "message", "role": "user", "content": "My name is Ada."}],
        metadata={"user": "ada"},
    )
    answer = await other.responses.create(
        model=MODEL, input="What is my name?", conversation=conversation.id
    )
    assert answer.conversation is not None and answer.conversation.id == conversation.id
    items = [item async for item in one.conversations.items.list(conversation.id, order="asc")]
    assert [(item.type, getattr(item, "role", None)) for item in items] == [
        ("message", "user"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert items[2].id == answer.output[0].id
    assert (await other.conversations.retrieve(conversation.id)).metadata == {"user": "ada"}


async def test_a_background_stream_made_on_one_replica_is_replayed_on_the_other(
    pair: tuple[ServerProcess, ...],
) -> None:
    one, other = (sdk(server) for server in pair)
    made = await one.responses.create(
        model=MODEL, input="What is the capital of France?", background=True, stream=True
    )
    events = [event async for event in made]
    assert isinstance(events[0], ResponseCreatedEvent)
    response_id = events[0].response.id
    assert [event.type for event in events[:3]] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    final = await other.responses.retrieve(response_id)
    assert final.status == "completed" and final.background
    tail = await other.responses.retrieve(response_id, stream=True, starting_after=4)
    assert [event.sequence_number async for event in tail] == [
        event.sequence_number for event in events[5:]
    ]
    async with other.responses.stream(response_id=response_id, starting_after=2) as stream:
        replayed = [event.type async for event in stream]
        again = await stream.get_final_response()
    assert replayed == [event.type for event in events[3:]]
    assert again.output_text == final.output_text
    with pytest.raises(openai.BadRequestError) as refused:
        await other.responses.cancel(response_id)
    assert "completed" in refused.value.message


async def test_a_killed_replica_comes_back_to_the_same_store(
    tmp_path: Path, postgres_url: str
) -> None:
    with fake_replica(tmp_path, postgres_url) as first_life:
        made = await sdk(first_life).responses.create(model=MODEL, input="Remember me.")
    # server_process kills its process group at the end, as a crash would.
    with fake_replica(tmp_path, postgres_url) as second_life:
        again = sdk(second_life)
        assert (await again.responses.retrieve(made.id)).id == made.id
        follow = await again.responses.create(
            model=MODEL, input="Do you?", previous_response_id=made.id
        )
    assert follow.status == "completed"

"""Agent sessions on the real engine through the official openai SDK, unchanged: background
responses (retrieve, cancel), a background stream left and resumed (`starting_after`),
conversations across turns (and a response's input items), a stored response continued the
moment its stream completes, and the errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine

HANG_GUARD = 120.0  # seconds: a broken implementation fails here instead of hanging
FINAL = ("completed", "incomplete", "failed", "cancelled")


def until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)  # polling the server's state


def settled(client: openai.OpenAI, response_id: str) -> Any:
    until(lambda: client.responses.retrieve(response_id).status in FINAL, "the run ended")
    return client.responses.retrieve(response_id)


def test_background_is_queued_then_retrieved_finished(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    made = sync_client.responses.create(
        model=live_server.model,
        input="What is the capital of France?",
        background=True,
        max_output_tokens=24,
        temperature=0.0,
    )
    assert made.status == "queued" and made.background
    final = settled(sync_client, made.id)
    assert final.status in ("completed", "incomplete"), final.error
    assert final.output_text and final.usage is not None and final.usage.output_tokens > 0


def test_cancel_stops_a_running_background_response(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    made = sync_client.responses.create(
        model=live_server.model,
        input="Write a very long story about a dragon who learns to bake bread.",
        background=True,
        max_output_tokens=1500,
        temperature=0.0,
    )
    until(
        lambda: sync_client.responses.retrieve(made.id).status == "in_progress",
        "the run was admitted",
    )
    cancelled = sync_client.responses.cancel(made.id)
    assert cancelled.status == "cancelled"
    engine = live_server.state.engine
    assert engine is not None
    until(lambda: not engine.progress().busy, "the engine stopped generating")
    assert sync_client.responses.retrieve(made.id).status == "cancelled"
    assert sync_client.responses.cancel(made.id).status == "cancelled"  # idempotent


def test_a_background_stream_is_resumed_after_a_disconnect(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    stream = sync_client.responses.create(
        model=live_server.model,
        input="Say hello in five words.",
        background=True,
        stream=True,
        max_output_tokens=32,
        temperature=0.0,
    )
    seen: list[Any] = []
    for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta":
            break  # the client goes away mid-answer
    stream.close()
    response_id = seen[0].response.id
    last = seen[-1].sequence_number
    resumed = list(sync_client.responses.retrieve(response_id, stream=True, starting_after=last))
    assert resumed[0].sequence_number == last + 1
    assert resumed[-1].type in ("response.completed", "response.incomplete")
    text = "".join(e.delta for e in [*seen, *resumed] if e.type == "response.output_text.delta")
    final = settled(sync_client, response_id)
    assert text == final.output_text and text
    with sync_client.responses.stream(response_id=response_id, starting_after=last) as again:
        assert [e.sequence_number for e in again] == [e.sequence_number for e in resumed]
        assert again.get_final_response().output_text == text


def test_a_conversation_across_turns(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    conversation = sync_client.conversations.create(metadata={"topic": "names"})
    turns = ["My name is Ada. Say hello to me.", "What is my name?"]
    answers = [
        sync_client.responses.create(
            model=live_server.model,
            conversation=conversation.id,
            input=turn,
            max_output_tokens=24,
            temperature=0.0,
        )
        for turn in turns
    ]
    items = list(sync_client.conversations.items.list(conversation.id, order="asc"))
    assert [getattr(item, "role", None) for item in items] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert [item.id for item in items[1::2]] == [answer.output[0].id for answer in answers]
    (asked,) = sync_client.responses.input_items.list(answers[1].id)  # its own input only
    assert asked.type == "message" and asked.id == items[2].id  # the item its conversation got
    assert [part.text for part in getattr(asked, "content", [])] == [turns[1]]
    assert answers[1].conversation is not None
    assert answers[1].usage is not None and answers[0].usage is not None
    assert answers[1].usage.input_tokens > answers[0].usage.input_tokens  # the first turn too
    sync_client.conversations.delete(conversation.id)
    with pytest.raises(openai.NotFoundError):
        sync_client.conversations.retrieve(conversation.id)


def test_a_streamed_response_is_stored_before_it_completes(
    sync_client: openai.OpenAI, live_server: LiveServer
) -> None:
    with sync_client.responses.stream(
        model=live_server.model, input="Say hi.", max_output_tokens=16, temperature=0.0
    ) as stream:
        for event in stream:
            if event.type in ("response.completed", "response.incomplete"):
                # Still inside the stream: the response must already be kept.
                follow = sync_client.responses.create(
                    model=live_server.model,
                    input="Again.",
                    previous_response_id=event.response.id,
                    max_output_tokens=8,
                )
                assert follow.previous_response_id == event.response.id


def test_bad_session_requests_are_4xx(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as unstored:
        sync_client.responses.create(
            model=live_server.model, input="hi", background=True, store=False
        )
    assert unstored.value.param == "background"
    plain = sync_client.responses.create(model=live_server.model, input="hi", max_output_tokens=4)
    with pytest.raises(openai.BadRequestError):
        sync_client.responses.cancel(plain.id)
    with pytest.raises(openai.NotFoundError):
        sync_client.responses.cancel("resp_unknown")
    with pytest.raises(openai.NotFoundError):
        sync_client.conversations.items.list("conv_unknown")
    with pytest.raises(openai.NotFoundError):
        sync_client.responses.input_items.list("resp_unknown")

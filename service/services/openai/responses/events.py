"""A chat stream as the Responses API's event sequence, in the order the openai SDK's stream
accumulator needs:

    response.created, response.in_progress (a background run: response.created, response.queued,
        then response.in_progress once admitted),
    per output item: response.output_item.added,
        reasoning: response.content_part.added, response.reasoning_text.delta...,
                   response.reasoning_text.done, response.content_part.done
        text:      response.content_part.added, response.output_text.delta...,
                   response.output_text.done, response.content_part.done
        call:      response.function_call_arguments.delta...,
                   response.function_call_arguments.done
    response.output_item.done, ..., and last response.completed (or response.incomplete; a
    background run that fails ends with response.failed)

Every event carries its `sequence_number`, from 0, without gaps: a client that reconnects to a
background stream asks for the events after the last one it saw. Reasoning (with a reasoning
parser) streams as `reasoning_text` events, as vLLM's Responses server sends it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from service.schemas.chat import ChatChunkChoice, ChatCompletionChunk
from service.schemas.responses import (
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputReasoning,
    OutputText,
    ReasoningText,
    Response,
)
from service.schemas.tools import DeltaToolCall
from service.services.openai.responses.items import new_id
from service.services.openai.responses.output import finish, usage_of
from service.services.openai.responses.request import PreparedResponse

# Events after which a stream has nothing more to say.
FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})

OnFinish = Callable[[Response], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """One event: its `type` (the SSE `event:` line), its number and its JSON (the `data:`)."""

    type: str
    sequence_number: int
    data: str


class ResponseEvents:
    """One response's stream: chat chunks in, events out. The output items are built as the
    events go, so the completed response is what the events said."""

    def __init__(self, prepared: PreparedResponse) -> None:
        self.prepared = prepared
        self.sequence = 0
        self.output: list[OutputItem] = []
        self.reasoning_item: OutputReasoning | None = None  # the open reasoning item
        self.text_item: OutputMessage | None = None  # the open message item
        self.calls: dict[int, OutputFunctionCall] = {}  # by tool-call index, open until the end
        self.finish_reason: str | None = None
        self.usage = usage_of(0, 0)

    def event(self, kind: str, **fields: Any) -> ResponseEvent:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return ResponseEvent(
            kind, payload["sequence_number"], json.dumps(payload, ensure_ascii=False)
        )

    def lifecycle(self, kind: str, response: Response) -> ResponseEvent:
        """`response.created`, `.queued`, `.in_progress`, `.failed`: the response as it is."""
        return self.event(kind, response=response.model_dump(mode="json"))

    def opening(self) -> list[ResponseEvent]:
        """The events of a stream that runs in its request."""
        shell = self.prepared.shell
        return [
            self.lifecycle("response.created", shell),
            self.lifecycle("response.in_progress", shell),
        ]

    async def of(
        self, chunks: AsyncIterator[ChatCompletionChunk], on_finish: OnFinish
    ) -> AsyncGenerator[ResponseEvent, None]:
        """The events of the output, then the final one; `on_finish` (which keeps the
        response) runs before the final event is sent, so a client that has it may continue
        the response at once."""
        async for chunk in chunks:
            for event in self.on_chunk(chunk):
                yield event
        closing = self.close_items()
        for event in closing:
            yield event
        response = finish(self.prepared, self.output, self.finish_reason, self.usage)
        await on_finish(response)
        kind = "response.completed" if response.status == "completed" else "response.incomplete"
        yield self.lifecycle(kind, response)

    def on_chunk(self, chunk: ChatCompletionChunk) -> list[ResponseEvent]:
        if chunk.usage is not None:
            self.usage = usage_of(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        events: list[ResponseEvent] = []
        for choice in chunk.choices:
            events += self.on_choice(choice)
        return events

    def on_choice(self, choice: ChatChunkChoice) -> list[ResponseEvent]:
        self.finish_reason = choice.finish_reason or self.finish_reason
        events: list[ResponseEvent] = []
        if choice.delta.reasoning:
            events += self.reasoning(choice.delta.reasoning)
        if choice.delta.content:
            events += self.text(choice.delta.content)
        for piece in choice.delta.tool_calls or []:
            events += self.call_piece(piece)
        return events

    def _added(self, item: OutputItem, shown: OutputItem) -> ResponseEvent:
        self.output.append(item)
        return self.event(
            "response.output_item.added",
            output_index=len(self.output) - 1,
            item=shown.model_dump(mode="json"),
        )

    def reasoning(self, delta: str) -> list[ResponseEvent]:
        events = [] if self.reasoning_item is not None else self.open_reasoning()
        assert self.reasoning_item is not None
        self.reasoning_item.content[0].text += delta
        events.append(
            self.event(
                "response.reasoning_text.delta",
                item_id=self.reasoning_item.id,
                output_index=self.output.index(self.reasoning_item),
                content_index=0,
                delta=delta,
            )
        )
        return events

    def open_reasoning(self) -> list[ResponseEvent]:
        item = OutputReasoning(
            id=new_id("rs"), status="in_progress", content=[ReasoningText(text="")]
        )
        self.reasoning_item = item
        return self._open(item)

    def close_reasoning(self) -> list[ResponseEvent]:
        item, self.reasoning_item = self.reasoning_item, None
        return [] if item is None else self._close(item, "response.reasoning_text.done")

    def text(self, delta: str) -> list[ResponseEvent]:
        events = self.close_reasoning()
        if self.text_item is None:
            events += self.open_text()
        assert self.text_item is not None
        self.text_item.content[0].text += delta
        events.append(
            self.event(
                "response.output_text.delta",
                item_id=self.text_item.id,
                output_index=self.output.index(self.text_item),
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        )
        return events

    def open_text(self) -> list[ResponseEvent]:
        item = OutputMessage(id=new_id("msg"), status="in_progress", content=[OutputText(text="")])
        self.text_item = item
        return self._open(item)

    def close_text(self) -> list[ResponseEvent]:
        item, self.text_item = self.text_item, None
        return [] if item is None else self._close(item, "response.output_text.done", logprobs=[])

    def _open(self, item: OutputMessage | OutputReasoning) -> list[ResponseEvent]:
        """An item with one empty content part: added (shown without its part), then its part."""
        added = self._added(item, item.model_copy(update={"content": []}))
        return [
            added,
            self.event(
                "response.content_part.added",
                item_id=item.id,
                output_index=len(self.output) - 1,
                content_index=0,
                part=item.content[0].model_dump(mode="json"),
            ),
        ]

    def _close(
        self, item: OutputMessage | OutputReasoning, text_done: str, **done: Any
    ) -> list[ResponseEvent]:
        """An item's part done with its text (`text_done`), the part, then the item."""
        index = self.output.index(item)
        part = item.content[0]
        item.status = "completed"
        where = {"item_id": item.id, "output_index": index, "content_index": 0}
        return [
            self.event(text_done, **where, text=part.text, **done),
            self.event("response.content_part.done", **where, part=part.model_dump(mode="json")),
            self.event(
                "response.output_item.done", output_index=index, item=item.model_dump(mode="json")
            ),
        ]

    def call_piece(self, piece: DeltaToolCall) -> list[ResponseEvent]:
        events: list[ResponseEvent] = []
        call = self.calls.get(piece.index)
        if call is None:
            events += self.close_reasoning() + self.close_text()
            call = OutputFunctionCall(
                id=new_id("fc"),
                call_id=piece.id or "",
                name=piece.function.name or "",
                arguments="",
                status="in_progress",
            )
            self.calls[piece.index] = call
            events.append(self._added(call, call))
        if piece.function.arguments:
            call.arguments += piece.function.arguments
            events.append(
                self.event(
                    "response.function_call_arguments.delta",
                    item_id=call.id,
                    output_index=self.output.index(call),
                    delta=piece.function.arguments,
                )
            )
        return events

    def close_items(self) -> list[ResponseEvent]:
        """The closing events of every open item."""
        events = self.close_reasoning() + self.close_text()
        for call in self.calls.values():
            index = self.output.index(call)
            call.status = "completed"
            events.append(
                self.event(
                    "response.function_call_arguments.done",
                    item_id=call.id,
                    output_index=index,
                    name=call.name,
                    arguments=call.arguments,
                )
            )
            events.append(
                self.event(
                    "response.output_item.done",
                    output_index=index,
                    item=call.model_dump(mode="json"),
                )
            )
        return events

"""A chat stream as the Responses API's event sequence, in the order the openai SDK's stream
accumulator needs:

    response.created, response.in_progress,
    per output item: response.output_item.added,
        text:  response.content_part.added, response.output_text.delta...,
               response.output_text.done, response.content_part.done
        call:  response.function_call_arguments.delta..., response.function_call_arguments.done
    response.output_item.done, ..., and last response.completed (with usage)

Every event carries its `sequence_number`. Reasoning text (with a reasoning parser) is not
streamed as events; it is in the completed response's output.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from service.schemas.chat import ChatChunkChoice, ChatCompletionChunk
from service.schemas.responses import OutputFunctionCall, OutputItem, OutputMessage, OutputText
from service.schemas.tools import DeltaToolCall
from service.services.openai.responses.output import finish, usage_of
from service.services.openai.responses.request import PreparedResponse
from service.services.openai.responses.store import ResponseStore


class ResponseEvents:
    """One response's stream: chat chunks in, event payloads (JSON) out. The output items are
    built as the events go, so the completed response is what the events said."""

    def __init__(self, prepared: PreparedResponse, store: ResponseStore) -> None:
        self.prepared = prepared
        self.store = store
        self.sequence = 0
        self.output: list[OutputItem] = []
        self.text_item: OutputMessage | None = None  # the open message item
        self.calls: dict[int, OutputFunctionCall] = {}  # by tool-call index, open until the end
        self.finish_reason: str | None = None
        self.usage = usage_of(0, 0)

    async def of(self, chunks: AsyncIterator[ChatCompletionChunk]) -> AsyncGenerator[str, None]:
        shell = self.prepared.shell.model_dump(mode="json")
        yield self.event("response.created", response=shell)
        yield self.event("response.in_progress", response=shell)
        async for chunk in chunks:
            for event in self.on_chunk(chunk):
                yield event
        for event in self.close():
            yield event

    def event(self, kind: str, **fields: Any) -> str:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return json.dumps(payload, ensure_ascii=False)

    def on_chunk(self, chunk: ChatCompletionChunk) -> list[str]:
        if chunk.usage is not None:
            self.usage = usage_of(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        events: list[str] = []
        for choice in chunk.choices:
            events += self.on_choice(choice)
        return events

    def on_choice(self, choice: ChatChunkChoice) -> list[str]:
        self.finish_reason = choice.finish_reason or self.finish_reason
        events: list[str] = []
        if choice.delta.content:
            events += self.text(choice.delta.content)
        for piece in choice.delta.tool_calls or []:
            events += self.call_piece(piece)
        return events

    def text(self, delta: str) -> list[str]:
        events = [] if self.text_item is not None else self.open_text()
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

    def open_text(self) -> list[str]:
        item = OutputMessage(
            id=f"msg_{uuid.uuid4().hex}", status="in_progress", content=[OutputText(text="")]
        )
        self.text_item = item
        self.output.append(item)
        index = len(self.output) - 1
        bare = item.model_copy(update={"content": []}).model_dump(mode="json")
        return [
            self.event("response.output_item.added", output_index=index, item=bare),
            self.event(
                "response.content_part.added",
                item_id=item.id,
                output_index=index,
                content_index=0,
                part=OutputText(text="").model_dump(mode="json"),
            ),
        ]

    def close_text(self) -> list[str]:
        item = self.text_item
        if item is None:
            return []
        self.text_item = None
        index = self.output.index(item)
        part = item.content[0]
        item.status = "completed"
        return [
            self.event(
                "response.output_text.done",
                item_id=item.id,
                output_index=index,
                content_index=0,
                text=part.text,
                logprobs=[],
            ),
            self.event(
                "response.content_part.done",
                item_id=item.id,
                output_index=index,
                content_index=0,
                part=part.model_dump(mode="json"),
            ),
            self.event(
                "response.output_item.done", output_index=index, item=item.model_dump(mode="json")
            ),
        ]

    def call_piece(self, piece: DeltaToolCall) -> list[str]:
        events: list[str] = []
        call = self.calls.get(piece.index)
        if call is None:
            events += self.close_text()
            call = OutputFunctionCall(
                id=f"fc_{uuid.uuid4().hex}",
                call_id=piece.id or "",
                name=piece.function.name or "",
                arguments="",
                status="in_progress",
            )
            self.calls[piece.index] = call
            self.output.append(call)
            events.append(
                self.event(
                    "response.output_item.added",
                    output_index=len(self.output) - 1,
                    item=call.model_dump(mode="json"),
                )
            )
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

    def close(self) -> list[str]:
        """The closing events of every open item, then the completed (or incomplete) response."""
        events = self.close_text()
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
        response = finish(self.prepared, self.output, self.finish_reason, self.usage, self.store)
        kind = "response.completed" if response.status == "completed" else "response.incomplete"
        events.append(self.event(kind, response=response.model_dump(mode="json")))
        return events

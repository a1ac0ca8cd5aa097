"""A streamed answer as Anthropic's event sequence, in the order the SDK's stream accumulator
(`client.messages.stream(...)`) needs to rebuild the whole message:

    message_start (the message with no content, its input tokens)
    per content block, in output order:
        content_block_start (the block, empty), content_block_delta..., content_block_stop
        thinking:  thinking_delta..., then one signature_delta before its stop
        text:      text_delta...
        tool_use:  input_json_delta... (the input's JSON text, piece by piece)
    message_delta (stop_reason, stop_sequence, usage), message_stop

Each event is an `Event`, its type and its JSON (`service/http/sse.py` sends it as `event:` +
`data:` lines, in Anthropic's framing). A block opens when the reader's pieces change kind and
closes when the next opens or the output ends; an output with no block at all sends one empty
text block, as the whole answer holds one (`output.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from service.engine.base import Engine, ParsedDelta, SequenceDelta, ToolCallFragment
from service.services.anthropic.output import signature, stop_reason, tool_use_id
from service.services.anthropic.prepare import PreparedMessages


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its type (the `event:` line) and its JSON (the `data:` line)."""

    type: str
    data: str


def event(kind: str, **fields: Any) -> Event:
    return Event(kind, json.dumps({"type": kind, **fields}, ensure_ascii=False))


class MessageEvents:
    """One message's stream: engine deltas in, events out."""

    def __init__(self, prepared: PreparedMessages, engine: Engine) -> None:
        self.prepared = prepared
        self.reader = prepared.tools.reader(engine, reasoning=prepared.reasoning)
        self.blocks = 0  # content blocks opened so far
        self.open: str | None = None  # the open block's kind: text, thinking, or a call's key
        self.calls: dict[int, int] = {}  # a call's index -> its block's index
        self.output_tokens = 0
        self.stop: tuple[str, str | None] | None = None

    def opening(self) -> Iterator[Event]:
        message: dict[str, Any] = {
            "id": self.prepared.id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.prepared.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prepared.input_tokens, "output_tokens": 0},
        }
        yield event("message_start", message=message)
        if not self.prepared.prefill_only:
            yield from self._pieces(self.reader.opening())

    def step(self, delta: SequenceDelta) -> Iterator[Event]:
        """What one engine step of the output adds."""
        self.output_tokens += len(delta.token_ids)
        ended = delta.finish_reason is not None
        if self.prepared.prefill_only or (not delta.text and not ended):
            return
        yield from self._pieces(self.reader.feed(delta.text, delta.token_ids, last=ended))
        if ended:
            outcome = self.reader.finish(delta.finish_reason)
            self.stop = stop_reason(self.prepared, outcome, delta.stop_reason)

    def closing(self) -> Iterator[Event]:
        """The open block's end, then the message's."""
        if self.prepared.prefill_only:
            reason: tuple[str, str | None] = ("max_tokens", None)
            self.output_tokens = 0
        else:
            if self.blocks == 0:
                yield from self._start("text", {"type": "text", "text": ""})
            yield from self._close()
            reason = self.stop or ("end_turn", None)
        usage = {"input_tokens": self.prepared.input_tokens, "output_tokens": self.output_tokens}
        delta = {"stop_reason": reason[0], "stop_sequence": reason[1]}
        yield event("message_delta", delta=delta, usage=usage)
        yield event("message_stop")

    def _pieces(self, parsed: ParsedDelta) -> Iterator[Event]:
        if parsed.reasoning and self.prepared.thinking != "none":
            yield from self._thinking(parsed.reasoning)
        if parsed.content:
            yield from self._text(parsed.content)
        for piece in parsed.tool_calls:
            yield from self._call(piece)

    def _thinking(self, text: str) -> Iterator[Event]:
        if self.open != "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
            yield from self._start("thinking", block)
        if self.prepared.thinking == "full":
            yield self._delta({"type": "thinking_delta", "thinking": text})

    def _text(self, text: str) -> Iterator[Event]:
        if self.open != "text":
            yield from self._start("text", {"type": "text", "text": ""})
        yield self._delta({"type": "text_delta", "text": text})

    def _call(self, piece: ToolCallFragment) -> Iterator[Event]:
        index = self.calls.get(piece.index)
        if index is None:  # a call's first piece carries its name
            block = {"type": "tool_use", "id": tool_use_id(), "name": piece.name or "", "input": {}}
            yield from self._start(f"call {piece.index}", block)
            index = self.calls[piece.index] = self.blocks - 1
        if piece.arguments:
            delta = {"type": "input_json_delta", "partial_json": piece.arguments}
            yield event("content_block_delta", index=index, delta=delta)

    def _start(self, kind: str, block: dict[str, Any]) -> Iterator[Event]:
        yield from self._close()
        self.open = kind
        self.blocks += 1
        yield event("content_block_start", index=self.blocks - 1, content_block=block)

    def _delta(self, delta: dict[str, str]) -> Event:
        return event("content_block_delta", index=self.blocks - 1, delta=delta)

    def _close(self) -> Iterator[Event]:
        if self.open is None:
            return
        if self.open == "thinking":
            yield self._delta({"type": "signature_delta", "signature": signature()})
        self.open = None
        yield event("content_block_stop", index=self.blocks - 1)

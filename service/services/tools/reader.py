"""Reading one output sequence, for every surface: step by step while streaming, or whole (the
whole text as one step), into surface-neutral pieces and, at the end, an `Outcome`.

Reasoning is split off first (the reasoning parser, when one is set and asked for); what is
left is read by the tool mode's calls reader (`modes.py`), or is the content as it is. The
pieces are `ParsedDelta`s: content text, reasoning text and tool-call fragments (`index`, the
`name` on a call's first fragment only, argument text). A surface turns each into its own
events, and the outcome into its own finish or stop reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import jsonschema

from service.engine.base import (
    FinishReason,
    ParsedDelta,
    ParsedToolCall,
    ReasoningParser,
    ToolCallFragment,
)
from service.telemetry.metrics import record_tool_calls

NOTHING = ParsedDelta()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one output came to, the same whether it was streamed or read whole.

    `text` is the text for the user: as it is (even empty) when nothing read the output, None
    when a reader (reasoning, tool calls) left none. `calls` are in order, the last as far as it
    got when the output was cut. `cut`: the output ended at its token limit (the engine's finish
    reason `length`). `named`: the request named the function, so the call is not the model's
    choice (OpenAI ends those in `stop`).

    Each surface maps this to its own reason in a line; chat's is `finish_reason` in
    `services/openai/chat.py`, and Anthropic's Messages API would say:

        stop_reason = "max_tokens" if outcome.cut else "tool_use" if outcome.calls else "end_turn"
    """

    text: str | None
    reasoning: str | None
    calls: list[ParsedToolCall]
    cut: bool
    named: bool = False


class CallReader(Protocol):
    """A tool mode's reader of the content (the output with its reasoning split off): calls as
    fragments, and the content left for the user. One instance per output sequence."""

    def opening(self) -> tuple[ToolCallFragment, ...]:
        """What is known before any output (a named choice's function name)."""
        ...

    def step(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        """The next streamed step's text (never empty) and token ids."""
        ...

    def flush(self) -> ParsedDelta:
        """What the reader held back, once the output has ended."""
        ...

    def whole(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        """The whole output in one step: what `step` then `flush` would give."""
        ...


class OutputReader:
    """One output sequence: `opening()` before any output, `feed(text, token_ids)` for each
    step (`last=True` on the step that ends it), then `finish(reason)` for the outcome, which
    also counts the calls in `gateway_tool_calls`. `read_whole` does all three for a whole
    answer, so a whole answer and a stream of the same output read the same way.

    An output read in one step (a whole answer) goes to the parsers' whole-text entry points
    (`extract`): vLLM's streaming parsers expect token-sized steps (llama3_json's gives nothing
    for a whole output in one step)."""

    def __init__(
        self,
        calls: CallReader | None,
        reasoning: ReasoningParser | None,
        *,
        parallel: bool = True,
        named: bool = False,
        parameters: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self._calls = calls
        self._reasoning = reasoning
        self._parallel = parallel
        self._named = named
        self._parameters = parameters or {}
        # Nothing reads the output: each step's text is its content as it is. A stream may send
        # that text without feeding it (plain chat's hot path); its outcome then has no text
        # (a whole answer is always fed).
        self.plain = calls is None and reasoning is None
        self._started = False
        self._text: list[str] = []
        self._thought: list[str] = []
        self._names: dict[int, str] = {}
        self._arguments: dict[int, list[str]] = {}

    def opening(self) -> ParsedDelta:
        if self._calls is None:
            return NOTHING
        return self._keep(None, None, self._calls.opening())

    def feed(self, text: str, token_ids: Sequence[int], *, last: bool = False) -> ParsedDelta:
        whole = last and not self._started
        self._started = True
        if self.plain:
            self._text.append(text)
            return ParsedDelta(text)
        thought, content = self._split(text, token_ids, whole=whole)
        delta = self._read_calls(content, token_ids, whole=whole, last=last)
        return self._keep(delta.content or None, thought, delta.tool_calls)

    def finish(self, finish_reason: FinishReason | None) -> Outcome:
        calls = [
            ParsedToolCall(self._names.get(index, ""), "".join(pieces))
            for index, pieces in sorted(self._arguments.items())
        ]
        if calls:
            count_calls(self._parameters, calls)
        text = "".join(self._text)
        return Outcome(
            text=text if text or self.plain else None,
            reasoning="".join(self._thought) or None,
            calls=calls,
            cut=finish_reason == "length",
            named=self._named,
        )

    def read_whole(
        self, text: str, token_ids: Sequence[int], finish_reason: FinishReason | None
    ) -> Outcome:
        """A whole answer: the opening, the text as one last step, the outcome."""
        self.opening()
        self.feed(text, token_ids, last=True)
        return self.finish(finish_reason)

    def _split(self, text: str, token_ids: Sequence[int], *, whole: bool) -> tuple[str | None, str]:
        """(reasoning, content) of one step; the content is empty while the parser holds it."""
        if self._reasoning is None:
            return None, text
        if whole:
            thought, content = self._reasoning.extract(text)
            return thought, content or ""
        parsed = self._reasoning.extract_streaming(text, token_ids)
        if parsed is None:
            return None, ""
        return parsed.reasoning, parsed.content or ""

    def _read_calls(
        self, content: str, token_ids: Sequence[int], *, whole: bool, last: bool
    ) -> ParsedDelta:
        if self._calls is None:
            return ParsedDelta(content=content)
        if whole:
            return self._calls.whole(content, token_ids)
        delta = self._calls.step(content, token_ids) if content else NOTHING
        if last:
            delta = joined(delta, self._calls.flush())
        return delta

    def _keep(
        self,
        content: str | None,
        reasoning: str | None,
        pieces: tuple[ToolCallFragment, ...],
    ) -> ParsedDelta:
        """Record what a step gives for the outcome; one call only unless parallel calls are
        allowed, and a call's name on its first fragment only."""
        if content:
            self._text.append(content)
        if reasoning:
            self._thought.append(reasoning)
        if pieces:
            pieces = tuple(piece for piece in map(self._track, pieces) if piece is not None)
        return ParsedDelta(content, reasoning, pieces)

    def _track(self, piece: ToolCallFragment) -> ToolCallFragment | None:
        if not self._parallel and piece.index != 0:
            return None
        if piece.name is not None:
            if piece.index not in self._names:
                self._names[piece.index] = piece.name
            elif piece.arguments:
                piece = replace(piece, name=None)
            else:
                return None  # a name sent again, and nothing else
        self._arguments.setdefault(piece.index, []).append(piece.arguments)
        return piece


def joined(first: ParsedDelta, second: ParsedDelta) -> ParsedDelta:
    """Two deltas as one (a step and what its reader released at the end)."""
    if second == NOTHING:
        return first
    content = (first.content or "") + (second.content or "")
    reasoning = (first.reasoning or "") + (second.reasoning or "")
    return ParsedDelta(content or None, reasoning or None, first.tool_calls + second.tool_calls)


def valid_arguments(parameters: Mapping[str, dict[str, Any]], call: ParsedToolCall) -> bool:
    """The call names a tool and its arguments are JSON that validates against its schema."""
    schema = parameters.get(call.name)
    if schema is None:
        return False
    try:
        arguments = json.loads(call.arguments)
        jsonschema.validate(arguments, schema, cls=jsonschema.Draft202012Validator)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def count_calls(parameters: Mapping[str, dict[str, Any]], calls: list[ParsedToolCall]) -> None:
    valid = sum(valid_arguments(parameters, call) for call in calls)
    record_tool_calls(parsed=valid, invalid=len(calls) - valid)

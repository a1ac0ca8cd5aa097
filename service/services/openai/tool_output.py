"""Tool calling and reasoning, after generation: one output sequence -> content, reasoning and tool
calls, whole or step by step while streaming.

`required` output is a compact JSON array of {"name", "parameters"} objects; `CallsReader` reads
it incrementally, so a streamed call is its name first, then its arguments' raw text piece by
piece, and the whole output yields exactly the same calls. A named choice's output is the
arguments themselves. `auto` goes through the engine's tool-call parser.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from service.engine.base import (
    Engine,
    ParsedDelta,
    ParsedToolCall,
    ReasoningParser,
    ToolCallFragment,
    ToolCallParser,
)
from service.services.openai.tools import ToolPlan
from service.telemetry.metrics import record_tool_calls

_CALL_START = re.compile(r'\{\s*"name"\s*:\s*"')
_ARGS_START = re.compile(r'"\s*,\s*"parameters"\s*:\s*')


def call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


class CallsReader:
    """Reads `[{"name":"f","parameters":{...}},...]` as it grows; see the module docstring."""

    def __init__(self) -> None:
        self.text = ""
        self._pos = 0
        self._state = "seek"  # seek -> name -> args -> seek ...
        self._index = -1
        self._name_start = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._sent = 0  # arguments text sent so far ends here
        self.calls: list[ParsedToolCall] = []
        self._args_start = 0
        self._name = ""

    def feed(self, text: str) -> list[ToolCallFragment]:
        self.text += text
        out: list[ToolCallFragment] = []
        while True:
            if self._state == "seek":
                found = _CALL_START.search(self.text, self._pos)
                if found is None:
                    return out
                self._name_start = self._pos = found.end()
                self._state = "name"
            elif self._state == "name":
                end = self.text.find('"', self._pos)
                if end < 0:
                    return out
                found = _ARGS_START.match(self.text, end)
                if found is None:
                    if len(self.text) - end < 32:  # the separator may still be arriving
                        return out
                    self._pos, self._state = end + 1, "seek"
                    continue
                self._index += 1
                self._name = self.text[self._name_start : end]
                out.append(ToolCallFragment(self._index, name=self._name))
                self._args_start = self._sent = self._pos = found.end()
                self._depth, self._in_string, self._escaped = 0, False, False
                self._state = "args"
            else:
                # Whitespace before the value (it may arrive after the separator) is not part
                # of the arguments.
                while (
                    self._pos == self._args_start < len(self.text)
                    and self.text[self._pos].isspace()
                ):
                    self._args_start = self._sent = self._pos = self._pos + 1
                done = self._scan_args()
                if self._pos > self._sent:
                    out.append(
                        ToolCallFragment(self._index, arguments=self.text[self._sent : self._pos])
                    )
                    self._sent = self._pos
                if not done:
                    return out
                arguments = self.text[self._args_start : self._pos]
                self.calls.append(ParsedToolCall(self._name, arguments))
                self._state = "seek"

    def unfinished(self) -> list[ParsedToolCall]:
        """The call cut off by the end of the output (max_tokens), as far as it got, so that a
        whole answer holds what a stream sent."""
        if self._state != "args":
            return []
        return [ParsedToolCall(self._name, self.text[self._args_start : self._pos])]

    def _scan_args(self) -> bool:
        """Advance over the arguments value; True once it is complete."""
        text = self.text
        while self._pos < len(text):
            char = text[self._pos]
            self._pos += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._depth == 0:
                    return True
        return False


@dataclass(slots=True)
class Shaped:
    content: str | None
    reasoning: str | None = None
    calls: list[ParsedToolCall] = field(default_factory=list)


def shape_output(engine: Engine, plan: ToolPlan | None, text: str, *, reasoning: bool) -> Shaped:
    """A finished sequence's text as content, reasoning and tool calls."""
    parser = engine.reasoning_parser() if reasoning else None
    if parser is None:
        if plan is None or plan.mode == "none":
            return Shaped(text)  # the plain path: the text as it is, even when empty
        thought: str | None = None
        content = text
    else:
        thought, extracted = parser.extract(text)
        content = extracted or ""
    if plan is None or plan.mode == "none":
        return Shaped(content or None, thought)
    if plan.mode == "named" and plan.named is not None:
        return Shaped(None, thought, [ParsedToolCall(plan.named, content)])
    if plan.mode == "required":
        reader = CallsReader()
        reader.feed(content)
        calls = reader.calls + reader.unfinished()
        if not calls:
            return Shaped(content or None, thought)
        return Shaped(None, thought, calls)
    tool_parser = engine.tool_parser(plan.tools)
    if tool_parser is None:
        return Shaped(content or None, thought)
    parsed = tool_parser.extract(content)
    calls = parsed.calls if plan.parallel else parsed.calls[:1]
    return Shaped(parsed.content if calls else content or None, thought, calls)


def finish_reason(plan: ToolPlan | None, engine_reason: str | None, called: bool) -> str | None:
    """OpenAI's: `tool_calls` when the model chose to call (auto, required); a named choice
    keeps `stop`, as OpenAI's forced function calls do."""
    if called and engine_reason == "stop" and plan is not None and plan.mode != "named":
        return "tool_calls"
    return engine_reason


def valid_arguments(plan: ToolPlan, call: ParsedToolCall) -> bool:
    """The call names a tool and its arguments are JSON that validates against its schema."""
    schema = plan.parameters.get(call.name)
    if schema is None:
        return False
    try:
        arguments = json.loads(call.arguments)
        jsonschema.validate(arguments, schema, cls=jsonschema.Draft202012Validator)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def count_calls(plan: ToolPlan | None, calls: list[ParsedToolCall]) -> None:
    if plan is None or not calls:
        return
    valid = sum(valid_arguments(plan, call) for call in calls)
    record_tool_calls(parsed=valid, invalid=len(calls) - valid)


class StreamShaper:
    """One streamed sequence: each engine step -> the content, reasoning and tool-call pieces
    to send. Tool-call pieces come with their index; `ids` names each call as it starts."""

    def __init__(self, engine: Engine, plan: ToolPlan | None, *, reasoning: bool) -> None:
        self.plan = plan
        self._reasoning: ReasoningParser | None = engine.reasoning_parser() if reasoning else None
        self._parser: ToolCallParser | None = None
        self._reader: CallsReader | None = None
        mode = plan.mode if plan is not None else "none"
        if plan is not None and mode == "auto":
            self._parser = engine.tool_parser(plan.tools)
        elif mode == "required":
            self._reader = CallsReader()
        self.ids: dict[int, str] = {}
        self.names: dict[int, str] = {}
        self.arguments: dict[int, str] = {}

    def opening(self) -> list[ToolCallFragment]:
        """What a named choice sends before any text: the call's name."""
        if self.plan is not None and self.plan.mode == "named" and self.plan.named is not None:
            return self._track([ToolCallFragment(0, name=self.plan.named)])
        return []

    def step(self, text: str, ids: Any, *, last: bool = False) -> ParsedDelta:
        delta = self._step(text, ids)
        if last and self._parser is not None:
            held = self._parser.finish()
            if held is not None:
                pieces = delta.tool_calls + tuple(self._track(list(held.tool_calls)))
                content = (delta.content or "") + (held.content or "")
                return ParsedDelta(content or None, delta.reasoning, pieces)
        return delta

    def _step(self, text: str, ids: Any) -> ParsedDelta:
        reasoning = None
        if self._reasoning is not None:
            parsed = self._reasoning.extract_streaming(text, ids)
            if parsed is None:
                return ParsedDelta()
            reasoning, text = parsed.reasoning, parsed.content or ""
        mode = self.plan.mode if self.plan is not None else "none"
        if mode == "named":
            pieces = [ToolCallFragment(0, arguments=text)] if text else []
            return ParsedDelta(reasoning=reasoning, tool_calls=tuple(self._track(pieces)))
        if self._reader is not None:
            return ParsedDelta(
                reasoning=reasoning, tool_calls=tuple(self._track(self._reader.feed(text)))
            )
        if self._parser is not None and text:
            parsed = self._parser.extract_streaming(text, ids)
            if parsed is None:
                return ParsedDelta(reasoning=reasoning)
            return ParsedDelta(
                parsed.content, reasoning, tuple(self._track(list(parsed.tool_calls)))
            )
        return ParsedDelta(text or None, reasoning)

    def _track(self, pieces: list[ToolCallFragment]) -> list[ToolCallFragment]:
        if self.plan is not None and not self.plan.parallel:
            pieces = [p for p in pieces if p.index == 0]
        for piece in pieces:
            if piece.index not in self.ids:
                self.ids[piece.index] = call_id()
            if piece.name:
                self.names[piece.index] = piece.name
            self.arguments[piece.index] = self.arguments.get(piece.index, "") + piece.arguments
        return pieces

    @property
    def called(self) -> bool:
        return bool(self.ids)

    def calls(self) -> list[ParsedToolCall]:
        return [
            ParsedToolCall(self.names.get(i, ""), self.arguments.get(i, ""))
            for i in sorted(self.ids)
        ]

"""The `required` mode's wire format, written and read in one place: the model generates a compact
JSON array of `{"name": ..., "parameters": {...}}` objects under a JSON schema built from the
tools' parameter schemas (`calls_schema`), and `CallsReader` reads that array as it grows.

The reader gives a call's name first (the schema puts `name` before `parameters`), then its
arguments' raw text piece by piece, so fed in any number of steps it gives the same calls as fed
the whole text at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from service.engine.base import ParsedDelta, ToolCallFragment

_CALL_START = re.compile(r'\{\s*"name"\s*:\s*"')
_ARGS_START = re.compile(r'"\s*,\s*"parameters"\s*:\s*')
# Past a name's closing quote, how far to look for `, "parameters":` before deciding this was
# not a call's name after all (the separator may still be arriving).
_SEPARATOR_WINDOW = 32


def calls_schema(parameters: dict[str, dict[str, Any]], *, parallel: bool) -> dict[str, Any]:
    """A JSON array of {"name", "parameters"} objects, name first (`CallsReader` relies on that
    order), one item unless parallel calls are allowed."""
    items = [
        {
            "type": "object",
            "properties": {"name": {"type": "string", "enum": [name]}, "parameters": schema},
            "required": ["name", "parameters"],
            "additionalProperties": False,
        }
        for name, schema in parameters.items()
    ]
    array: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": items}}
    if not parallel:
        array["maxItems"] = 1
    return array


class CallsReader:
    """Reads `[{"name":"f","parameters":{...}},...]` as it grows: each `feed` returns the
    fragments the new text completes (a call's name once, then pieces of its arguments).

    A small state machine over the text so far; each state is a method that returns True when
    it moved on and False when it needs more text: seek (the next call's start) -> name (up to
    the separator) -> arguments (to the matching bracket) -> seek ..."""

    def __init__(self) -> None:
        self.text = ""
        self.calls = 0  # calls whose name was read
        self._pos = 0
        self._state: Callable[[list[ToolCallFragment]], bool] = self._seek
        self._name_start = 0
        self._args_start = 0
        self._sent = 0  # the arguments text sent so far ends here
        self._depth = 0
        self._in_string = False
        self._escaped = False

    def feed(self, text: str) -> list[ToolCallFragment]:
        self.text += text
        out: list[ToolCallFragment] = []
        while self._state(out):
            pass
        return out

    def _seek(self, out: list[ToolCallFragment]) -> bool:
        found = _CALL_START.search(self.text, self._pos)
        if found is None:
            return False
        self._name_start = self._pos = found.end()
        self._state = self._name
        return True

    def _name(self, out: list[ToolCallFragment]) -> bool:
        end = self.text.find('"', self._pos)
        if end < 0:
            return False
        found = _ARGS_START.match(self.text, end)
        if found is None:
            if len(self.text) - end < _SEPARATOR_WINDOW:
                return False
            self._pos, self._state = end + 1, self._seek
            return True
        out.append(ToolCallFragment(self.calls, name=self.text[self._name_start : end]))
        self.calls += 1
        self._args_start = self._sent = self._pos = found.end()
        self._depth, self._in_string, self._escaped = 0, False, False
        self._state = self._arguments
        return True

    def _arguments(self, out: list[ToolCallFragment]) -> bool:
        # Whitespace before the value (it may arrive after the separator) is not part of the
        # arguments.
        while self._pos == self._args_start < len(self.text) and self.text[self._pos].isspace():
            self._args_start = self._sent = self._pos = self._pos + 1
        done = self._scan_value()
        if self._pos > self._sent:
            piece = self.text[self._sent : self._pos]
            out.append(ToolCallFragment(self.calls - 1, arguments=piece))
            self._sent = self._pos
        if done:
            self._state = self._seek
        return done

    def _scan_value(self) -> bool:
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


class RequiredCallsReader:
    """The `required` mode's calls reader (`reader.CallReader`): the calls as they are read; an
    output that holds no call at all (cut off before the first name) is the text, as content,
    at the end."""

    def __init__(self) -> None:
        self._reader = CallsReader()

    def opening(self) -> tuple[ToolCallFragment, ...]:
        return ()

    def step(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        return ParsedDelta(tool_calls=tuple(self._reader.feed(text)))

    def flush(self) -> ParsedDelta:
        if self._reader.calls or not self._reader.text:
            return ParsedDelta()
        return ParsedDelta(content=self._reader.text)

    def whole(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        pieces = self.step(text, token_ids).tool_calls
        return ParsedDelta(content=self.flush().content, tool_calls=pieces)

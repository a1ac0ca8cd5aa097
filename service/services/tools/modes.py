"""The `tool_choice` modes, one object each: its constraint (the JSON schema vLLM's structured
outputs generate under, or none), whether the prompt offers the tools, and the reader of its
output. `plan.py` makes the mode once per request; nothing after that asks which one it is.

| mode | constraint | output read by |
|---|---|---|
| `none` | none; the tools are left out of the prompt | nothing: text |
| `auto` | none | the engine's tool-call parser (`tool_call_parser`); without one, text |
| `required` | a JSON array of {name, parameters} (`required.py`) | `required.RequiredCallsReader` |
| named | the function's parameters schema | the text is the call's arguments |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from service.engine.base import (
    Engine,
    ParsedDelta,
    StructuredOutput,
    ToolCallFragment,
    ToolCallParser,
)
from service.services.tools.reader import NOTHING, CallReader
from service.services.tools.required import RequiredCallsReader, calls_schema


class ToolMode(Protocol):
    # The JSON schema the output is generated under (None: free text).
    @property
    def constraint(self) -> StructuredOutput | None: ...

    # The prompt offers the tools (the chat template is given them).
    offers_tools: ClassVar[bool]
    # The request named the function: the call is not the model's choice.
    named: ClassVar[bool]

    def calls_reader(self, engine: Engine) -> CallReader | None:
        """A fresh reader of one output's calls (None: the output is text)."""
        ...


@dataclass(frozen=True, slots=True)
class NoCalls:
    """`none`: the model answers in text; the tools are not in the prompt."""

    offers_tools: ClassVar[bool] = False
    named: ClassVar[bool] = False
    constraint: StructuredOutput | None = None

    def calls_reader(self, engine: Engine) -> CallReader | None:
        return None


@dataclass(frozen=True, slots=True)
class AutoCalls:
    """`auto`: the model writes text or calls in its own format, read back by the engine's
    tool-call parser; with none configured the output is text."""

    tools: list[dict[str, Any]]  # as the parsers take them
    offers_tools: ClassVar[bool] = True
    named: ClassVar[bool] = False
    constraint: StructuredOutput | None = None

    def calls_reader(self, engine: Engine) -> CallReader | None:
        parser = engine.tool_parser(self.tools)
        return ParserCallReader(parser) if parser is not None else None


@dataclass(frozen=True, slots=True)
class RequiredCalls:
    """`required`: a JSON array of calls under a schema built from every tool's parameters."""

    parameters: dict[str, dict[str, Any]]
    parallel: bool
    offers_tools: ClassVar[bool] = True
    named: ClassVar[bool] = False
    constraint: StructuredOutput | None = field(init=False)

    def __post_init__(self) -> None:
        schema = calls_schema(self.parameters, parallel=self.parallel)
        object.__setattr__(self, "constraint", StructuredOutput(json_schema=schema))

    def calls_reader(self, engine: Engine) -> CallReader | None:
        return RequiredCallsReader()


@dataclass(frozen=True, slots=True)
class NamedCall:
    """A named function: the output is its arguments, under its parameters schema."""

    name: str
    parameters: dict[str, Any]
    offers_tools: ClassVar[bool] = True
    named: ClassVar[bool] = True
    constraint: StructuredOutput | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "constraint", StructuredOutput(json_schema=self.parameters))

    def calls_reader(self, engine: Engine) -> CallReader | None:
        return NamedCallReader(self.name)


class NamedCallReader:
    """The named function's call: its name before any output, then every step's text as
    argument text."""

    def __init__(self, name: str) -> None:
        self._name = name

    def opening(self) -> tuple[ToolCallFragment, ...]:
        return (ToolCallFragment(0, name=self._name),)

    def step(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        return ParsedDelta(tool_calls=(ToolCallFragment(0, arguments=text),))

    def flush(self) -> ParsedDelta:
        return NOTHING

    def whole(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        return self.step(text, token_ids) if text else NOTHING


class ParserCallReader:
    """`auto` through the engine's tool-call parser: its streaming entry point step by step,
    its whole-text one for an output read in one step."""

    def __init__(self, parser: ToolCallParser) -> None:
        self._parser = parser

    def opening(self) -> tuple[ToolCallFragment, ...]:
        return ()

    def step(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        return self._parser.extract_streaming(text, token_ids) or NOTHING

    def flush(self) -> ParsedDelta:
        return self._parser.finish() or NOTHING

    def whole(self, text: str, token_ids: Sequence[int]) -> ParsedDelta:
        parsed = self._parser.extract(text)
        if not parsed.calls:
            return ParsedDelta(content=text)
        pieces = tuple(
            piece
            for index, call in enumerate(parsed.calls)
            for piece in (
                ToolCallFragment(index, name=call.name),
                ToolCallFragment(index, arguments=call.arguments),
            )
        )
        return ParsedDelta(content=parsed.content, tool_calls=pieces)

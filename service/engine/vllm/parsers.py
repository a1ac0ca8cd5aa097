"""vLLM's tool-call and reasoning parsers behind the engine's `ToolCallParser` and
`ReasoningParser` protocols.

vLLM's parsers want a tokenizer, a vLLM `ChatCompletionRequest` and, when streaming, the text and
token ids so far; each wrapper keeps that history, so callers hand over one step at a time. The
parsers' own ids (`chatcmpl-tool-...`) are dropped: the service names calls `call_...` as OpenAI
does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from service.engine.base import (
    ParsedDelta,
    ParsedToolCall,
    ParsedToolCalls,
    ToolCallFragment,
)
from service.engine.vllm import compat
from service.errors import ConfigurationError

logger = logging.getLogger(__name__)


def load_tool_parser(name: str, tokenizer: Any) -> Any:
    """The parser class for `tool_call_parser`, checked against the tokenizer now (a parser
    that needs special tokens the tokenizer lacks fails here, at start-up)."""
    try:
        cls = compat.tool_parser_class(name)
    except KeyError as err:
        known = ", ".join(compat.ToolParserManager.list_registered())
        raise ConfigurationError(
            f"tool_call_parser={name!r} is not one of vLLM's tool parsers ({known})."
        ) from err
    try:
        cls(tokenizer, None)
    except Exception as err:
        raise ConfigurationError(
            f"tool_call_parser={name!r} does not fit this model's tokenizer: {err}"
        ) from err
    return cls


def load_reasoning_parser(name: str, tokenizer: Any) -> Any:
    try:
        cls = compat.reasoning_parser_class(name)
    except KeyError as err:
        raise ConfigurationError(
            f"reasoning_parser={name!r} is not one of vLLM's reasoning parsers."
        ) from err
    try:
        cls(tokenizer)
    except Exception as err:
        raise ConfigurationError(
            f"reasoning_parser={name!r} does not fit this model's tokenizer: {err}"
        ) from err
    return cls


class _History:
    """The text and token ids of one output so far, as vLLM's streaming parsers want them."""

    def __init__(self) -> None:
        self.text = ""
        self.ids: list[int] = []

    def step(self, delta_text: str, delta_ids: Sequence[int]) -> tuple[Any, ...]:
        previous_text, previous_ids = self.text, list(self.ids)
        self.text += delta_text
        self.ids.extend(delta_ids)
        return previous_text, self.text, delta_text, previous_ids, list(self.ids), list(delta_ids)


class VLLMToolCallParser:
    def __init__(self, parser_class: Any, tokenizer: Any, tools: list[dict[str, Any]]) -> None:
        self._request = compat.parser_request(tools)
        self._parser = parser_class(tokenizer, self._request.tools)
        self._history = _History()

    def extract(self, text: str) -> ParsedToolCalls:
        info = self._parser.extract_tool_calls(text, self._request)
        calls = [
            ParsedToolCall(name=call.function.name, arguments=call.function.arguments or "")
            for call in (info.tool_calls or [])
        ]
        if not (info.tools_called and calls):
            return ParsedToolCalls(content=text, calls=[])
        return ParsedToolCalls(content=info.content or None, calls=calls)

    def extract_streaming(self, delta_text: str, delta_ids: Sequence[int]) -> ParsedDelta | None:
        args = self._history.step(delta_text, delta_ids)
        try:
            delta = self._parser.extract_tool_calls_streaming(*args, self._request)
        except Exception:  # a parser bug must not end the stream: pass the text through
            logger.exception("tool-call parser failed on a streamed step")
            return ParsedDelta(content=delta_text)
        return _delta(delta)

    def finish(self) -> ParsedDelta | None:
        finish = getattr(self._parser, "finish_streaming", None)  # engine-based parsers (0.32)
        return _delta(finish()) if finish is not None else None


class VLLMReasoningParser:
    def __init__(self, parser_class: Any, tokenizer: Any) -> None:
        self._parser = parser_class(tokenizer)
        self._request = compat.parser_request([])
        self._history = _History()

    def extract(self, text: str) -> tuple[str | None, str | None]:
        return compat.extract_reasoning(self._parser, text, self._request)

    def extract_streaming(self, delta_text: str, delta_ids: Sequence[int]) -> ParsedDelta | None:
        args = self._history.step(delta_text, delta_ids)
        return _delta(compat.extract_reasoning_streaming(self._parser, *args))


def _delta(delta: Any) -> ParsedDelta | None:
    """vLLM's DeltaMessage (content, reasoning, tool-call pieces) as a ParsedDelta."""
    if delta is None:
        return None
    fragments = tuple(
        ToolCallFragment(
            index=call.index,
            name=getattr(call.function, "name", None) if call.function else None,
            arguments=(getattr(call.function, "arguments", None) or "") if call.function else "",
        )
        for call in (getattr(delta, "tool_calls", None) or [])
    )
    return ParsedDelta(
        content=delta.content, reasoning=compat.delta_reasoning(delta), tool_calls=fragments
    )

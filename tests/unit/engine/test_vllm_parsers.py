"""vLLM's tool-call and reasoning parsers behind our protocols, on canned model text: three tool
formats (hermes, llama3_json, mistral) whole and streamed, reasoning whole and streamed, and the
start-up checks against a tokenizer without the special tokens a parser needs.

The fixture tokenizer is a tiny one built in memory (`tests/char_tokenizer.py`), with the special
tokens each format needs (so no model is downloaded)."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine.vllm.parsers import (
    VLLMReasoningParser,
    VLLMToolCallParser,
    load_reasoning_parser,
    load_tool_parser,
)
from service.errors import ConfigurationError
from tests.char_tokenizer import SPECIAL, ids_of, make_tokenizer, pieces

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return make_tokenizer(SPECIAL)


FORMATS = [
    pytest.param(
        "hermes",
        'Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
        "Sure. ",
        id="hermes",
    ),
    pytest.param(
        "llama3_json",
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}',
        None,
        id="llama3_json",
    ),
    pytest.param("mistral", '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', None, id="mistral"),
]


@pytest.mark.parametrize(("name", "text", "content"), FORMATS)
def test_whole_output_gives_the_call(
    tokenizer: Any, name: str, text: str, content: str | None
) -> None:
    parser = VLLMToolCallParser(load_tool_parser(name, tokenizer), tokenizer, TOOLS)
    parsed = parser.extract(text)
    assert [(c.name, c.arguments) for c in parsed.calls] == [("get_weather", '{"city": "Paris"}')]
    assert parsed.content == content


@pytest.mark.parametrize(("name", "text", "content"), FORMATS)
def test_streamed_output_gives_the_same_call(
    tokenizer: Any, name: str, text: str, content: str | None
) -> None:
    parser = VLLMToolCallParser(load_tool_parser(name, tokenizer), tokenizer, TOOLS)
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    streamed_content = ""
    deltas = [parser.extract_streaming(piece, ids_of(tokenizer, piece)) for piece in pieces(text)]
    for delta in [*deltas, parser.finish()]:
        if delta is None:
            continue
        streamed_content += delta.content or ""
        for fragment in delta.tool_calls:
            if fragment.name:
                names[fragment.index] = fragment.name
            arguments[fragment.index] = arguments.get(fragment.index, "") + fragment.arguments
    assert names == {0: "get_weather"}
    assert arguments[0].replace(" ", "") == '{"city":"Paris"}'
    assert streamed_content == (content or "")


def test_plain_text_is_content(tokenizer: Any) -> None:
    parser = VLLMToolCallParser(load_tool_parser("hermes", tokenizer), tokenizer, TOOLS)
    parsed = parser.extract("It is sunny.")
    assert parsed.calls == [] and parsed.content == "It is sunny."


def test_reasoning_whole_and_streamed(tokenizer: Any) -> None:
    text = "<think>The user wants weather.</think>It is sunny."
    parser_class = load_reasoning_parser("deepseek_r1", tokenizer)
    assert VLLMReasoningParser(parser_class, tokenizer).extract(text) == (
        "The user wants weather.",
        "It is sunny.",
    )
    streaming = VLLMReasoningParser(parser_class, tokenizer)
    reasoning = content = ""
    for piece in pieces(text):
        delta = streaming.extract_streaming(piece, ids_of(tokenizer, piece))
        if delta is not None:
            reasoning += delta.reasoning or ""
            content += delta.content or ""
    assert (reasoning, content) == ("The user wants weather.", "It is sunny.")


@pytest.mark.parametrize(
    ("setting", "load", "name"),
    [
        pytest.param(
            "tool_call_parser", load_tool_parser, "llama3_json", id="llama3-no-python-tag"
        ),
        pytest.param(
            "reasoning_parser", load_reasoning_parser, "deepseek_r1", id="no-think-tokens"
        ),
        pytest.param("tool_call_parser", load_tool_parser, "no-such-parser", id="unknown-tool"),
        pytest.param("reasoning_parser", load_reasoning_parser, "no-such", id="unknown-reasoning"),
    ],
)
def test_a_parser_that_does_not_fit_fails_naming_the_setting(
    setting: str, load: Any, name: str
) -> None:
    bare = make_tokenizer([])
    with pytest.raises(ConfigurationError, match=f"{setting}='{name}'"):
        load(name, bare)

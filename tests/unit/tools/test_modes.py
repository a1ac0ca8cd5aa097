"""Each `tool_choice` mode: its constraint and what the prompt shows, its reader over a stream
split at every boundary against the same output read whole, and the outcome (text, reasoning,
calls, cut, named). `auto` and reasoning run through vLLM's own parsers (hermes, deepseek_r1) on
an in-memory tokenizer (`tests/char_tokenizer.py`), inside the fake engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from service.config import Settings
from service.engine.base import FinishReason, ParsedDelta, ParsedToolCall
from service.engine.fake import FakeEngine
from service.engine.vllm.parsers import (
    VLLMReasoningParser,
    VLLMToolCallParser,
    load_reasoning_parser,
    load_tool_parser,
)
from service.schemas.tools import FunctionTool, NamedToolChoice, ToolChoice
from service.services.tools import NO_TOOLS, Outcome, OutputReader, ToolPlan, plan_tools
from service.services.tools.reader import valid_arguments
from tests.char_tokenizer import SPECIAL, ids_of, make_tokenizer, pieces

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
TIME = {"type": "object", "properties": {"zone": {"type": "string"}}}
TOOLS = [
    FunctionTool.model_validate(
        {"type": "function", "function": {"name": name, "parameters": schema}}
    )
    for name, schema in (("get_weather", WEATHER), ("get_time", TIME))
]
NAMED = NamedToolChoice.model_validate({"type": "function", "function": {"name": "get_weather"}})

TEXT = "The capital of France is Paris."
ARGUMENTS = '{"city":"Paris","unit":"celsius"}'
REQUIRED_TWO = (
    f'[{{"name":"get_weather","parameters":{ARGUMENTS}}},{{"name":"get_time","parameters":{{}}}}]'
)
HERMES_TWO = (
    'Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
    '<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>'
)
THOUGHT = "<think>The user wants the weather.</think>"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return make_tokenizer(SPECIAL)


@pytest.fixture(scope="module")
def engine(tokenizer: Any) -> FakeEngine:
    """The fake engine with vLLM's hermes tool-call parser and deepseek_r1 reasoning parser."""
    hermes = load_tool_parser("hermes", tokenizer)
    deepseek = load_reasoning_parser("deepseek_r1", tokenizer)
    return FakeEngine(
        tool_parser=lambda tools: VLLMToolCallParser(hermes, tokenizer, tools),
        reasoning=lambda: VLLMReasoningParser(deepseek, tokenizer),
    )


def plan(choice: ToolChoice | None, *, parallel: bool | None = None) -> ToolPlan:
    return plan_tools(TOOLS, choice, parallel, Settings())


@dataclass
class Sent:
    """What a stream's pieces add up to, checked as they come: a call's name on its first
    fragment only, never an argument before it."""

    content: str = ""
    reasoning: str = ""
    names: dict[int, str] = field(default_factory=dict)
    arguments: dict[int, str] = field(default_factory=dict)

    def add(self, delta: ParsedDelta) -> None:
        self.content += delta.content or ""
        self.reasoning += delta.reasoning or ""
        for piece in delta.tool_calls:
            if piece.name is not None:
                assert piece.index not in self.names, piece
                self.names[piece.index] = piece.name
            assert piece.index in self.names, piece
            self.arguments[piece.index] = self.arguments.get(piece.index, "") + piece.arguments

    @property
    def calls(self) -> list[ParsedToolCall]:
        return [ParsedToolCall(self.names[i], self.arguments[i]) for i in sorted(self.names)]


def stream(
    reader: OutputReader,
    steps: Sequence[str],
    finish: FinishReason = "stop",
    tokenizer: Any = None,
) -> tuple[Sent, Outcome]:
    sent = Sent()
    sent.add(reader.opening())
    for i, step in enumerate(steps):
        ids = ids_of(tokenizer, step) if tokenizer is not None else []
        sent.add(reader.feed(step, ids, last=i == len(steps) - 1))
    return sent, reader.finish(finish)


def splits(text: str) -> list[list[str]]:
    """The text in two steps cut at every place, and one character a step."""
    return [[text[:cut], text[cut:]] for cut in range(len(text) + 1)] + [list(text)]


def whole(
    chosen: ToolPlan, engine: FakeEngine, text: str, finish: FinishReason = "stop", **kw: Any
) -> Outcome:
    reader = chosen.reader(engine, reasoning=kw.get("reasoning", False))
    ids = ids_of(kw["tokenizer"], text) if "tokenizer" in kw else []
    return reader.read_whole(text, ids, finish)


def test_constraints_and_prompts_per_mode() -> None:
    assert NO_TOOLS.constraint is None and NO_TOOLS.template_tools is None
    assert plan("none").constraint is None and plan("none").template_tools is None
    for offered in (plan("auto"), plan(None), plan("required"), plan(NAMED)):
        assert offered.template_tools == [t.model_dump(exclude_none=True) for t in TOOLS]
    assert plan("auto").constraint is None
    named = plan(NAMED).constraint
    assert named is not None and named.json_schema == WEATHER
    required = plan("required").constraint
    assert required is not None and required.json_schema is not None
    schema = required.json_schema
    assert [i["properties"]["name"]["enum"] for i in schema["items"]["anyOf"]] == [
        ["get_weather"],
        ["get_time"],
    ]
    assert "maxItems" not in schema
    one = plan("required", parallel=False).constraint
    assert one is not None and one.json_schema is not None and one.json_schema["maxItems"] == 1


@pytest.mark.parametrize(
    "chosen",
    [
        pytest.param(NO_TOOLS, id="no-tools"),
        pytest.param(plan("none"), id="none"),
        pytest.param(plan("auto"), id="auto-without-a-parser"),
    ],
)
def test_text_modes_stream_and_whole_give_the_text(chosen: ToolPlan) -> None:
    engine = FakeEngine()  # no tool-call format: `auto` answers in text
    expected = whole(chosen, engine, TEXT)
    assert expected == Outcome(TEXT, None, [], cut=False)
    for steps in splits(TEXT):
        sent, outcome = stream(chosen.reader(engine, reasoning=False), steps)
        assert (sent.content, sent.calls, outcome) == (TEXT, [], expected)


def test_an_empty_plain_output_is_empty_text() -> None:
    assert whole(NO_TOOLS, FakeEngine(), "").text == ""


def test_required_stream_at_every_boundary_is_the_whole_answer() -> None:
    chosen, engine = plan("required"), FakeEngine()
    expected = whole(chosen, engine, REQUIRED_TWO)
    assert expected == Outcome(
        None,
        None,
        [ParsedToolCall("get_weather", ARGUMENTS), ParsedToolCall("get_time", "{}")],
        cut=False,
    )
    for steps in splits(REQUIRED_TWO):
        sent, outcome = stream(chosen.reader(engine, reasoning=False), steps)
        assert (sent.calls, sent.content, outcome) == (expected.calls, "", expected)


def test_required_keeps_one_call_unless_parallel_calls_are_allowed() -> None:
    chosen, engine = plan("required", parallel=False), FakeEngine()
    expected = [ParsedToolCall("get_weather", ARGUMENTS)]
    assert whole(chosen, engine, REQUIRED_TWO).calls == expected
    sent, outcome = stream(chosen.reader(engine, reasoning=False), list(REQUIRED_TWO))
    assert sent.calls == outcome.calls == expected


def test_required_cut_off_gives_the_call_as_far_as_it_got() -> None:
    chosen, engine = plan("required"), FakeEngine()
    text = '[{"name":"get_weather","parameters":{"city":"Par'
    expected = whole(chosen, engine, text, "length")
    assert expected == Outcome(None, None, [ParsedToolCall("get_weather", '{"city":"Par')], True)
    for steps in splits(text):
        assert stream(chosen.reader(engine, reasoning=False), steps, "length")[1] == expected


def test_required_cut_before_any_call_is_the_text() -> None:
    chosen, engine = plan("required"), FakeEngine()
    text = '[{"name":"get_wea'
    assert whole(chosen, engine, text, "length") == Outcome(text, None, [], cut=True)
    for steps in splits(text):
        sent, outcome = stream(chosen.reader(engine, reasoning=False), steps, "length")
        assert (sent.content, outcome.text, outcome.calls) == (text, text, [])


def test_named_sends_the_name_first_then_the_text_as_arguments() -> None:
    chosen, engine = plan(NAMED), FakeEngine()
    expected = whole(chosen, engine, ARGUMENTS)
    assert expected == Outcome(None, None, [ParsedToolCall("get_weather", ARGUMENTS)], False, True)
    assert chosen.reader(engine, reasoning=False).opening().tool_calls[0].name == "get_weather"
    for steps in splits(ARGUMENTS):
        sent, outcome = stream(chosen.reader(engine, reasoning=False), steps)
        assert (sent.calls, outcome) == (expected.calls, expected)


def test_named_with_no_output_still_names_the_call() -> None:
    outcome = whole(plan(NAMED), FakeEngine(), "", "length")
    assert outcome == Outcome(None, None, [ParsedToolCall("get_weather", "")], True, True)


def test_auto_reads_calls_with_the_engine_parser(engine: FakeEngine, tokenizer: Any) -> None:
    chosen = plan("auto")
    expected = whole(chosen, engine, HERMES_TWO, tokenizer=tokenizer)
    assert expected.text == "Sure. " and not expected.named
    assert expected.calls == [
        ParsedToolCall("get_weather", '{"city": "Paris"}'),
        ParsedToolCall("get_time", '{"zone": "CET"}'),
    ]
    for steps in [*splits(HERMES_TWO), pieces(HERMES_TWO)]:
        reader = chosen.reader(engine, reasoning=False)
        sent, outcome = stream(reader, steps, tokenizer=tokenizer)
        assert (sent.content, sent.calls, outcome) == ("Sure. ", expected.calls, expected)


def test_auto_keeps_one_call_unless_parallel_calls_are_allowed(
    engine: FakeEngine, tokenizer: Any
) -> None:
    chosen = plan("auto", parallel=False)
    first = [ParsedToolCall("get_weather", '{"city": "Paris"}')]
    assert whole(chosen, engine, HERMES_TWO, tokenizer=tokenizer).calls == first
    reader = chosen.reader(engine, reasoning=False)
    sent, outcome = stream(reader, pieces(HERMES_TWO), tokenizer=tokenizer)
    assert sent.calls == outcome.calls == first


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        pytest.param(
            "hermes",
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
            id="hermes",
        ),
        # vLLM's llama3_json streaming parser gives nothing for a whole output in one step:
        # a whole answer goes to the parsers' whole-text entry point.
        pytest.param(
            "llama3_json",
            '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}',
            id="llama3_json",
        ),
        pytest.param("mistral", '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', id="mistral"),
    ],
)
def test_auto_whole_answers_in_each_format(tokenizer: Any, parser: str, text: str) -> None:
    loaded = load_tool_parser(parser, tokenizer)
    engine = FakeEngine(tool_parser=lambda tools: VLLMToolCallParser(loaded, tokenizer, tools))
    outcome = whole(plan("auto"), engine, text, tokenizer=tokenizer)
    assert outcome == Outcome(
        None, None, [ParsedToolCall("get_weather", '{"city": "Paris"}')], False
    )


def test_auto_text_without_calls_stays_content(engine: FakeEngine, tokenizer: Any) -> None:
    outcome = whole(plan("auto"), engine, TEXT, tokenizer=tokenizer)
    assert outcome == Outcome(TEXT, None, [], cut=False)


@pytest.mark.parametrize(
    ("choice", "output", "calls"),
    [
        pytest.param("none", TEXT, [], id="none"),
        pytest.param(
            "required",
            REQUIRED_TWO,
            [ParsedToolCall("get_weather", ARGUMENTS), ParsedToolCall("get_time", "{}")],
            id="required",
        ),
        pytest.param(NAMED, ARGUMENTS, [ParsedToolCall("get_weather", ARGUMENTS)], id="named"),
        pytest.param(
            "auto", HERMES_TWO, [ParsedToolCall("get_weather", '{"city": "Paris"}')], id="auto"
        ),
    ],
)
def test_reasoning_is_split_off_before_the_calls_are_read(
    engine: FakeEngine, tokenizer: Any, choice: ToolChoice, output: str, calls: Any
) -> None:
    chosen = plan(choice, parallel=False if choice == "auto" else None)
    text = THOUGHT + output
    expected = whole(chosen, engine, text, tokenizer=tokenizer, reasoning=True)
    assert expected.reasoning == "The user wants the weather."
    assert expected.calls == calls
    sent, outcome = stream(chosen.reader(engine, reasoning=True), pieces(text), tokenizer=tokenizer)
    assert sent.reasoning == "The user wants the weather."
    assert sent.calls == outcome.calls == calls
    assert outcome.reasoning == expected.reasoning


def test_arguments_are_valid_only_against_the_named_tool_schema() -> None:
    parameters = plan("required").parameters
    assert valid_arguments(parameters, ParsedToolCall("get_weather", '{"city": "Paris"}'))
    assert not valid_arguments(parameters, ParsedToolCall("get_weather", '{"city": 1}'))
    assert not valid_arguments(parameters, ParsedToolCall("get_weather", '{"city": "Par'))
    assert not valid_arguments(parameters, ParsedToolCall("get_date", "{}"))

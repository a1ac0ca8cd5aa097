"""Reading `required` tool-call output (a JSON array of {"name", "parameters"}) whole and piece by
piece, and checking arguments against the tools' schemas (the gateway_tool_calls outcome)."""

from __future__ import annotations

import pytest

from service.config import Settings
from service.engine.base import ParsedToolCall
from service.schemas.tools import FunctionTool
from service.services.openai.tool_output import CallsReader, valid_arguments
from service.services.openai.tools import plan_tools

TWO_CALLS = (
    '[{"name":"get_weather","parameters":{"city":"Paris","tags":["a}","b\\"]"]}},'
    '{"name":"get_time","parameters":{}}]'
)
EXPECTED = [
    ("get_weather", '{"city":"Paris","tags":["a}","b\\"]"]}'),
    ("get_time", "{}"),
]


def test_whole_output_gives_every_call() -> None:
    reader = CallsReader()
    reader.feed(TWO_CALLS)
    assert [(c.name, c.arguments) for c in reader.calls] == EXPECTED
    assert reader.unfinished() == []


@pytest.mark.parametrize("size", [1, 2, 5, 17])
def test_pieces_give_names_first_then_the_same_arguments(size: int) -> None:
    reader = CallsReader()
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for start in range(0, len(TWO_CALLS), size):
        for fragment in reader.feed(TWO_CALLS[start : start + size]):
            if fragment.name is not None:
                assert fragment.index not in names and fragment.arguments == ""
                names[fragment.index] = fragment.name
            else:
                assert fragment.index in names  # arguments never before the name
            arguments[fragment.index] = arguments.get(fragment.index, "") + fragment.arguments
    assert [(names[i], arguments[i]) for i in sorted(names)] == EXPECTED


def test_whitespace_around_the_json_is_not_part_of_the_arguments() -> None:
    reader = CallsReader()
    for piece in ['[ { "name" : "f" , ', '"parameters" :', ' {"a": 1} } ]']:
        reader.feed(piece)
    assert [(c.name, c.arguments) for c in reader.calls] == [("f", '{"a": 1}')]


def test_an_output_cut_off_keeps_the_call_as_far_as_it_got() -> None:
    reader = CallsReader()
    reader.feed('[{"name":"f","parameters":{"city":"Par')
    assert reader.calls == []
    assert reader.unfinished() == [ParsedToolCall("f", '{"city":"Par')]


def test_arguments_are_valid_only_against_the_named_tool_schema() -> None:
    tools = [
        FunctionTool.model_validate(
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "parameters": {
                        "type": "object",
                        "properties": {"n": {"type": "integer"}},
                        "required": ["n"],
                    },
                },
            }
        )
    ]
    plan = plan_tools(tools, "required", None, Settings())
    assert plan is not None
    assert valid_arguments(plan, ParsedToolCall("f", '{"n": 1}'))
    assert not valid_arguments(plan, ParsedToolCall("f", '{"n": "one"}'))
    assert not valid_arguments(plan, ParsedToolCall("f", '{"n": 1'))
    assert not valid_arguments(plan, ParsedToolCall("g", '{"n": 1}'))

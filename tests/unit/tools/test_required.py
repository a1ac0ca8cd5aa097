"""The `required` mode's wire format: the schema the model generates under, and `CallsReader`
reading that JSON array whole and piece by piece."""

from __future__ import annotations

import json

import jsonschema
import pytest

from service.services.tools.required import CallsReader, calls_schema

TWO_CALLS = (
    '[{"name":"get_weather","parameters":{"city":"Paris","tags":["a}","b\\"]"]}},'
    '{"name":"get_time","parameters":{}}]'
)
EXPECTED = [
    ("get_weather", '{"city":"Paris","tags":["a}","b\\"]"]}'),
    ("get_time", "{}"),
]
PARAMETERS = {
    "get_weather": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "tags": {"type": "array"}},
    },
    "get_time": {"type": "object", "properties": {}},
}


def read(reader: CallsReader, pieces: list[str]) -> list[tuple[str, str]]:
    """Feed the pieces; the calls the fragments spell, checking a call's name comes first and
    once."""
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for piece in pieces:
        for fragment in reader.feed(piece):
            if fragment.name is not None:
                assert fragment.index not in names and fragment.arguments == ""
                names[fragment.index] = fragment.name
            else:
                assert fragment.index in names  # arguments never before the name
            arguments[fragment.index] = arguments.get(fragment.index, "") + fragment.arguments
    return [(names[i], arguments.get(i, "")) for i in sorted(names)]


def test_whole_output_gives_every_call() -> None:
    assert read(CallsReader(), [TWO_CALLS]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 5, 17])
def test_pieces_give_names_first_then_the_same_arguments(size: int) -> None:
    pieces = [TWO_CALLS[start : start + size] for start in range(0, len(TWO_CALLS), size)]
    assert read(CallsReader(), pieces) == EXPECTED


def test_a_split_anywhere_gives_the_same_calls() -> None:
    for cut in range(len(TWO_CALLS) + 1):
        assert read(CallsReader(), [TWO_CALLS[:cut], TWO_CALLS[cut:]]) == EXPECTED, cut


def test_whitespace_around_the_json_is_not_part_of_the_arguments() -> None:
    pieces = ['[ { "name" : "f" , ', '"parameters" :', ' {"a": 1} } ]']
    assert read(CallsReader(), pieces) == [("f", '{"a": 1}')]


def test_an_output_cut_off_keeps_the_call_as_far_as_it_got() -> None:
    reader = CallsReader()
    assert read(reader, ['[{"name":"f","parameters":{"city":"Par']) == [("f", '{"city":"Par')]
    assert reader.calls == 1


def test_a_name_without_its_separator_is_not_a_call() -> None:
    reader = CallsReader()
    text = '[{"name":"f"' + " " * 40 + '}, {"name":"g","parameters":{}}]'
    assert read(reader, [text]) == [("g", "{}")]


@pytest.mark.parametrize("parallel", [True, False])
def test_the_schema_takes_the_calls_the_reader_reads(parallel: bool) -> None:
    schema = calls_schema(PARAMETERS, parallel=parallel)
    jsonschema.Draft202012Validator.check_schema(schema)
    calls = json.loads(TWO_CALLS)
    if parallel:
        jsonschema.validate(calls, schema)
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(calls, schema)
        jsonschema.validate(calls[:1], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"name": "other", "parameters": {}}], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([], schema)
    item = schema["items"]["anyOf"][0]
    assert list(item["properties"]) == ["name", "parameters"]  # name first: the reader needs it

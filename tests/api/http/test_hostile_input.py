"""Hostile bodies on every endpoint: each is a 4xx in OpenAI's error shape, never a 500 or a hang.

Malformed and truncated JSON, JSON that is not an object, NaN/Infinity literals, integers far
beyond any bound (and beyond Python's 4300-digit int-from-string limit), deep nesting, invalid
UTF-8 and lone surrogates, empty strings, unknown fields and wrong types. When the problem is
in one field, the error names it (`param`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.engine.fake import FakeEngine
from tests.api.helpers import CHAT, COMPLETIONS, assert_openai_error
from tests.conftest import FAKE_MODEL

GENERATE, SUMMARIZE, CLASSIFY, TASK_CHAT = (
    "/v1/generate",
    "/v1/summarize",
    "/v1/classify",
    "/v1/chat",
)
HUGE = 10**40
VALID: dict[str, dict[str, Any]] = {
    CHAT: {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]},
    COMPLETIONS: {"model": FAKE_MODEL, "prompt": "hi"},
    GENERATE: {"prompt": "hi"},
    SUMMARIZE: {"text": "hi", "style": "headline"},
    CLASSIFY: {"text": "hi", "labels": ["yes", "no"]},
    TASK_CHAT: {"message": "hi"},
}
PATHS = [pytest.param(path, id=path.removeprefix("/v1/")) for path in VALID]


async def post_raw(client: httpx.AsyncClient, path: str, content: bytes) -> httpx.Response:
    return await client.post(path, content=content, headers={"content-type": "application/json"})


def with_raw(path: str, field: str, raw: bytes) -> bytes:
    """The endpoint's valid body plus `"field": <raw JSON text>` (NaN, huge numbers...)."""
    body = json.dumps(VALID[path]).encode()
    return body[:-1] + b', "' + field.encode() + b'": ' + raw + b"}"


@pytest.fixture(autouse=True)
def no_engine_work(client: httpx.AsyncClient, fake_engine: FakeEngine) -> Iterator[None]:
    """Every request here is refused before it reaches the engine (after its warm-up)."""
    before = len(fake_engine.requests)
    yield
    assert len(fake_engine.requests) == before


# --------------------------------------------------------------------------- not JSON objects
MALFORMED = [
    pytest.param(b"{", id="open-brace"),
    pytest.param(b'{"model": "fake-model", "messages": [', id="truncated"),
    pytest.param(b'{"model": "fake-model",}', id="trailing-comma"),
    pytest.param(b"{'model': 'fake-model'}", id="single-quotes"),
    pytest.param(b"model=fake-model&prompt=hi", id="form-encoded"),
    pytest.param(b"", id="empty"),
    pytest.param(b"   ", id="whitespace"),
    pytest.param(b"[]", id="list"),
    pytest.param(b'[{"prompt": "hi"}]', id="list-of-objects"),
    pytest.param(b"42", id="number"),
    pytest.param(b'"hi"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"true", id="bool"),
    pytest.param(b"NaN", id="bare-nan"),
    pytest.param(b"[" * 10_000 + b"]" * 10_000, id="nested-10000-arrays"),
    pytest.param(b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, id="nested-10000-objects"),
    pytest.param(b'{"prompt": "h\xff\xfei", "text": "\xc3("}', id="invalid-utf8"),
    pytest.param(b"\xef\xbb\xbf{}", id="utf8-bom"),
    pytest.param(b"\x00\x01\x02", id="binary"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("content", MALFORMED)
async def test_a_body_that_is_not_a_json_object_is_a_400(
    client: httpx.AsyncClient, path: str, content: bytes
) -> None:
    response = await post_raw(client, path, content)
    error = assert_openai_error(response, 400)
    if b"\xff" in content or content.startswith(b"[" * 1000):  # refused by the JSON parser
        assert error["code"] == "invalid_json", error


@pytest.mark.parametrize("path", PATHS)
async def test_deep_nesting_inside_a_field_is_refused_naming_it(
    client: httpx.AsyncClient, path: str
) -> None:
    # Shallow enough for the JSON parser, deeper than any request needs.
    response = await post_raw(client, path, with_raw(path, "model", b"[" * 500 + b"]" * 500))
    error = assert_openai_error(response, 400)
    assert error["param"] is not None
    assert error["param"].startswith("model")


# --------------------------------------------------------------------------- numbers
FLOATS = {
    CHAT: ["temperature", "top_p", "presence_penalty", "frequency_penalty", "timeout"],
    COMPLETIONS: ["temperature", "top_p", "min_p", "repetition_penalty", "timeout"],
    GENERATE: ["temperature", "top_p", "repetition_penalty", "length_penalty", "timeout"],
    SUMMARIZE: ["timeout"],
    CLASSIFY: ["timeout"],
    TASK_CHAT: ["temperature", "top_p", "repetition_penalty", "timeout"],
}
NON_FINITE = [
    pytest.param(path, field, literal, id=f"{path.removeprefix('/v1/')}-{field}-{literal}")
    for path, fields in FLOATS.items()
    for field in fields
    for literal in ("NaN", "Infinity", "-Infinity")
]


@pytest.mark.parametrize(("path", "field", "literal"), NON_FINITE)
async def test_nan_and_infinity_are_a_400_naming_the_field(
    client: httpx.AsyncClient, path: str, field: str, literal: str
) -> None:
    response = await post_raw(client, path, with_raw(path, field, literal.encode()))
    assert_openai_error(response, 400, param=field)


async def test_nan_and_huge_ints_in_free_form_fields(client: httpx.AsyncClient) -> None:
    schema = b'{"type": "object", "properties": {"x": {"type": "number", "maximum": NaN}}}'
    body = with_raw(CHAT, "structured_outputs", b'{"json": ' + schema + b"}")
    response = await post_raw(client, CHAT, body)
    assert_openai_error(response, 400, param="structured_outputs.json.properties.x.maximum")
    huge = {"json": {"type": "string", "maxLength": HUGE}}
    response = await client.post(CHAT, json={**VALID[CHAT], "structured_outputs": huge})
    assert_openai_error(response, 400, param="structured_outputs.json.maxLength")
    logit_bias = with_raw(CHAT, "logit_bias", b'{"5": Infinity}')
    assert_openai_error(await post_raw(client, CHAT, logit_bias), 400, param="logit_bias.5")


INTS = {
    CHAT: [
        "max_tokens",
        "max_completion_tokens",
        "n",
        "seed",
        "top_k",
        "min_tokens",
        "top_logprobs",
    ],
    COMPLETIONS: ["max_tokens", "n", "seed", "top_k", "min_tokens", "logprobs", "best_of"],
    GENERATE: [
        "max_new_tokens",
        "max_length",
        "min_new_tokens",
        "min_length",
        "top_k",
        "num_beams",
        "num_return_sequences",
        "no_repeat_ngram_size",
        "seed",
    ],
    SUMMARIZE: ["max_length", "min_length"],
    CLASSIFY: [],
    TASK_CHAT: ["max_tokens", "top_k", "seed"],
}
HUGE_INTS = [
    pytest.param(path, field, value, id=f"{path.removeprefix('/v1/')}-{field}-{name}")
    for path, fields in INTS.items()
    for field in fields
    for name, value in (("1e40", HUGE), ("-1e40", -HUGE), ("2**63", 2**63), ("float", 1e30))
]


@pytest.mark.parametrize(("path", "field", "value"), HUGE_INTS)
async def test_huge_integers_are_a_400_naming_the_field(
    client: httpx.AsyncClient, path: str, field: str, value: int | float
) -> None:
    extra = {"logprobs": True} if field == "top_logprobs" else {}
    response = await client.post(path, json={**VALID[path], **extra, field: value})
    assert_openai_error(response, 400, param=field)


HUGE_ITEMS = [
    pytest.param(CHAT, {"stop_token_ids": [HUGE]}, "stop_token_ids.0", id="stop_token_id"),
    pytest.param(CHAT, {"stop_token_ids": [-1]}, "stop_token_ids.0", id="negative-stop_token_id"),
    pytest.param(CHAT, {"logit_bias": {str(HUGE): 1}}, "logit_bias", id="logit_bias-token"),
    pytest.param(COMPLETIONS, {"prompt": [1, HUGE]}, "prompt.1", id="prompt-token-id"),
    pytest.param(
        COMPLETIONS, {"prompt": [[1], [2, HUGE]]}, "prompt.1.1", id="prompt-token-id-list"
    ),
]


@pytest.mark.parametrize(("path", "fields", "param"), HUGE_ITEMS)
async def test_huge_integers_inside_lists_and_keys_name_the_item(
    client: httpx.AsyncClient, path: str, fields: dict[str, Any], param: str
) -> None:
    response = await client.post(path, json={**VALID[path], **fields})
    assert_openai_error(response, 400, param=param)


@pytest.mark.parametrize("path", PATHS)
async def test_an_integer_beyond_pythons_digit_limit_is_a_400(
    client: httpx.AsyncClient, path: str
) -> None:
    # int("9" * 5000) raises ValueError (the 4300-digit limit) inside the JSON parser.
    response = await post_raw(client, path, with_raw(path, "seed", b"9" * 5000))
    assert_openai_error(response, 400, code="invalid_json")


async def test_a_long_digit_string_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json={**VALID[CHAT], "seed": "9" * 5000})
    assert_openai_error(response, 400, param="seed")


# --------------------------------------------------------------------------- text
SURROGATE = b'"a\\ud800b"'  # a JSON escape that decodes to a lone surrogate


@pytest.mark.parametrize("path", PATHS)
async def test_a_lone_surrogate_is_a_400_naming_the_field(
    client: httpx.AsyncClient, path: str
) -> None:
    # Unchecked, it reaches the tokenizer or an error message that echoes it, and neither can
    # encode it to UTF-8: a 500.
    response = await post_raw(client, path, with_raw(path, "model", SURROGATE))
    error = assert_openai_error(response, 400, param="model")
    assert "Unicode" in error["message"]


SURROGATES = [
    pytest.param(
        CHAT,
        b'{"model": "fake-model", "messages": [{"role": "user", "content": "\\udfff"}]}',
        "messages.0.content",
        id="chat-content",
    ),
    pytest.param(
        COMPLETIONS,
        b'{"model": "fake-model", "prompt": ["ok", "\\ud83d"]}',
        "prompt.1",
        id="prompt",
    ),
    pytest.param(CLASSIFY, b'{"text": "hi", "labels": ["a", "\\ud800"]}', "labels.1", id="label"),
    pytest.param(CHAT, b'{"model": "fake-model", "\\ud800": 1}', "", id="unknown-key"),
    pytest.param(GENERATE, b'{"prompt": "hi", "stop": ["\\udc00"]}', "stop.0", id="stop"),
]


@pytest.mark.parametrize(("path", "content", "param"), SURROGATES)
async def test_lone_surrogates_anywhere_are_refused(
    client: httpx.AsyncClient, path: str, content: bytes, param: str
) -> None:
    response = await post_raw(client, path, content)
    assert_openai_error(response, 400, param=param or None)


EMPTY = [
    pytest.param(CHAT, {"model": ""}, "model", id="chat-model"),
    pytest.param(COMPLETIONS, {"model": ""}, "model", id="completions-model"),
    pytest.param(GENERATE, {"model": ""}, "model", id="generate-model"),
    pytest.param(TASK_CHAT, {"model": ""}, "model", id="task-chat-model"),
    pytest.param(COMPLETIONS, {"prompt": ""}, "prompt", id="prompt"),
    pytest.param(COMPLETIONS, {"prompt": []}, "prompt", id="prompt-list"),
    pytest.param(CHAT, {"stop": ""}, "stop", id="stop"),
    pytest.param(CHAT, {"stop": ["a", ""]}, "stop.1", id="stop-item"),
    pytest.param(CHAT, {"messages": []}, "messages", id="messages"),
    pytest.param(GENERATE, {"prompt": ""}, "prompt", id="generate-prompt"),
    pytest.param(GENERATE, {"prompt": None, "prompts": ["a", ""]}, "prompts.1", id="prompts-item"),
    pytest.param(SUMMARIZE, {"text": ""}, "text", id="summarize-text"),
    pytest.param(SUMMARIZE, {"text": None, "texts": []}, "texts", id="summarize-texts"),
    pytest.param(CLASSIFY, {"labels": ["a", ""]}, "labels.1", id="label"),
    pytest.param(CLASSIFY, {"labels": ["a", "  "]}, "labels.1", id="blank-label"),
    pytest.param(CLASSIFY, {"labels": []}, "labels", id="labels"),
    pytest.param(CLASSIFY, {"text": None, "texts": ["a", ""]}, "texts.1", id="texts-item"),
    pytest.param(
        CLASSIFY, {"examples": [{"text": "", "label": "a"}]}, "examples.0.text", id="example"
    ),
    pytest.param(TASK_CHAT, {"message": ""}, "message", id="task-chat-message"),
    pytest.param(
        CHAT,
        {"structured_outputs": {"choice": ["a", ""]}},
        "structured_outputs.choice.1",
        id="choice",
    ),
    pytest.param(
        CHAT,
        {"response_format": {"type": "json_schema", "json_schema": {"name": ""}}},
        "response_format.json_schema.name",
        id="json_schema-name",
    ),
]


@pytest.mark.parametrize(("path", "fields", "param"), EMPTY)
async def test_empty_strings_where_they_make_no_sense_are_a_400(
    client: httpx.AsyncClient, path: str, fields: dict[str, Any], param: str
) -> None:
    body = {k: v for k, v in {**VALID[path], **fields}.items() if v is not None}
    response = await client.post(path, json=body)
    assert_openai_error(response, 400, param=param)


# --------------------------------------------------------------------------- fields and types
@pytest.mark.parametrize("path", PATHS)
async def test_unknown_fields_are_a_400_naming_them(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={**VALID[path], "temperatur": 0.5})
    assert_openai_error(response, 400, param="temperatur", code="unknown_parameter")


WRONG_TYPES = [
    pytest.param(CHAT, {"messages": "hi"}, "messages", id="messages-string"),
    pytest.param(CHAT, {"messages": [["user", "hi"]]}, "messages.0", id="message-list"),
    pytest.param(
        CHAT, {"messages": [{"role": "user", "content": 5}]}, "messages.0.content", id="content"
    ),
    pytest.param(CHAT, {"model": 5}, "model", id="model-number"),
    pytest.param(CHAT, {"n": "two"}, "n", id="n-string"),
    pytest.param(CHAT, {"n": 1.5}, "n", id="n-fraction"),
    pytest.param(CHAT, {"stream": "maybe"}, "stream", id="stream-string"),
    pytest.param(CHAT, {"stop": 5}, "stop", id="stop-number"),
    pytest.param(CHAT, {"stop": ["a"] * 17}, "stop", id="too-many-stops"),
    pytest.param(CHAT, {"logit_bias": [1, 2]}, "logit_bias", id="logit_bias-list"),
    pytest.param(CHAT, {"timeout": "soon"}, "timeout", id="timeout-string"),
    pytest.param(COMPLETIONS, {"prompt": {"text": "hi"}}, "prompt", id="prompt-object"),
    pytest.param(COMPLETIONS, {"prompt": [1, "a"]}, "prompt.1", id="prompt-mixed"),
    pytest.param(COMPLETIONS, {"prompt": [True]}, "prompt.0", id="prompt-bool"),
    pytest.param(GENERATE, {"prompt": ["hi"]}, "prompt", id="generate-prompt-list"),
    pytest.param(GENERATE, {"num_beams": "four"}, "num_beams", id="num_beams-string"),
    pytest.param(SUMMARIZE, {"style": 3}, "style", id="style-number"),
    pytest.param(CLASSIFY, {"labels": 5}, "labels", id="labels-number"),
    pytest.param(CLASSIFY, {"labels": {"a": 1}}, "labels", id="labels-object"),
    pytest.param(CLASSIFY, {"labels": [1, 2]}, "labels.0", id="labels-numbers"),
    pytest.param(CLASSIFY, {"label_descriptions": ["a"]}, "label_descriptions", id="descriptions"),
    pytest.param(TASK_CHAT, {"history": {"role": "user"}}, "history", id="history-object"),
    pytest.param(TASK_CHAT, {"max_tokens": [8]}, "max_tokens", id="max_tokens-list"),
]


@pytest.mark.parametrize(("path", "fields", "param"), WRONG_TYPES)
async def test_wrong_types_are_a_400_naming_the_field(
    client: httpx.AsyncClient, path: str, fields: dict[str, Any], param: str
) -> None:
    response = await client.post(path, json={**VALID[path], **fields})
    assert_openai_error(response, 400, param=param)


# --------------------------------------------------------------------------- sizes
TOO_MANY = [
    pytest.param(
        CHAT,
        {"messages": [{"role": "user", "content": "hi"}] * 513},
        "messages",
        id="chat-messages",
    ),
    pytest.param(
        TASK_CHAT,
        {"message": None, "messages": [{"role": "user", "content": "hi"}] * 513},
        "messages",
        id="task-chat-messages",
    ),
    pytest.param(CLASSIFY, {"labels": [f"l{i}" for i in range(65)]}, "labels", id="labels"),
    pytest.param(CLASSIFY, {"text": None, "texts": ["a"] * 65}, "texts", id="texts"),
    pytest.param(COMPLETIONS, {"prompt": ["a"] * 65}, "prompt", id="prompts"),
    pytest.param(GENERATE, {"prompt": None, "prompts": ["a"] * 65}, "prompts", id="generate"),
    pytest.param(SUMMARIZE, {"text": "x" * 200_001}, "text", id="text-length"),
]


@pytest.mark.parametrize(("path", "fields", "param"), TOO_MANY)
async def test_too_many_items_are_a_413_naming_the_field(
    client: httpx.AsyncClient, path: str, fields: dict[str, Any], param: str
) -> None:
    body = {k: v for k, v in {**VALID[path], **fields}.items() if v is not None}
    response = await client.post(path, json=body)
    assert_openai_error(response, 413, param=param, code="payload_too_large")


JSON_STRINGS = [
    # json.loads raises RecursionError here, which is no ValueError: unchecked, a 500.
    pytest.param("[" * 5000 + "]" * 5000, id="deep"),
    pytest.param('{"type": "number", "maximum": NaN}', id="nan"),
    pytest.param('{"type": ', id="truncated"),
    pytest.param("5", id="not-an-object"),
    pytest.param('{"maxLength": ' + str(HUGE) + "}", id="huge-int"),
]


@pytest.mark.parametrize("schema", JSON_STRINGS)
async def test_a_bad_json_schema_given_as_a_string_is_a_400(
    client: httpx.AsyncClient, schema: str
) -> None:
    body = {**VALID[CHAT], "structured_outputs": {"json": schema}}
    error = assert_openai_error(await client.post(CHAT, json=body), 400)
    assert error["param"].startswith("structured_outputs.json")

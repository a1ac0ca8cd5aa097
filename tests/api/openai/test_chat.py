"""/v1/chat/completions on the fake engine (template: "role: content ... assistant:")."""

from __future__ import annotations

import json
from typing import Any, TypedDict

import httpx
import pytest

from service.engine.base import SamplingOptions, StructuredOutput
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from tests.api.helpers import CHAT, assert_openai_error, chat_body
from tests.conftest import FAKE_MODEL

REPLY_TOKENS = len(DEFAULT_REPLY.split())


class TokenLimits(TypedDict, total=False):
    max_tokens: int
    max_completion_tokens: int


async def chat(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(CHAT, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def last_prompt(engine: FakeEngine) -> str:
    return engine.tokenizer.decode(engine.requests[-1].prompt_token_ids)


def last_options(engine: FakeEngine) -> SamplingOptions:
    return engine.requests[-1].options


async def test_a_chat_completion(client: httpx.AsyncClient) -> None:
    body = await chat(client, chat_body("What is the capital of France?"))
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == FAKE_MODEL
    assert isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"] == {"role": "assistant", "content": DEFAULT_REPLY}
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    prompt_tokens = 8  # "user: What is the capital of France? assistant:"
    assert body["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": REPLY_TOKENS,
        "total_tokens": prompt_tokens + REPLY_TOKENS,
    }


async def test_messages_go_through_the_chat_template(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Capital of France?"},
    ]
    await chat(client, {"model": FAKE_MODEL, "messages": messages})
    assert last_prompt(fake_engine) == (
        "system: Be brief. user: Hi assistant: Hello! user: Capital of France? assistant:"
    )


async def test_the_developer_role_is_a_system_message(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    await chat(client, {"model": FAKE_MODEL, "messages": messages})
    assert last_prompt(fake_engine) == "system: Be brief. user: Hi assistant:"


async def test_content_as_a_list_of_text_parts(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    parts = [{"type": "text", "text": "Capital"}, {"type": "text", "text": " of France?"}]
    await chat(client, {"model": FAKE_MODEL, "messages": [{"role": "user", "content": parts}]})
    assert last_prompt(fake_engine) == "user: Capital of France? assistant:"


async def test_an_assistant_message_may_have_no_content(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "Again"},
    ]
    await chat(client, {"model": FAKE_MODEL, "messages": messages})
    assert last_prompt(fake_engine) == "user: Hi assistant: user: Again assistant:"


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"max_completion_tokens": 2}, id="max_completion_tokens"),
        pytest.param({"max_tokens": 2}, id="max_tokens"),
        pytest.param({"max_tokens": 50, "max_completion_tokens": 2}, id="both-newer-wins"),
    ],
)
async def test_token_limits_are_honoured(
    client: httpx.AsyncClient, fake_engine: FakeEngine, limits: TokenLimits
) -> None:
    body = await chat(client, chat_body(**limits))
    assert last_options(fake_engine).max_tokens == 2
    assert body["choices"][0]["message"]["content"] == "The capital"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


async def test_without_a_limit_the_default_cap_applies(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await chat(client, chat_body())
    assert last_options(fake_engine).max_tokens == 16  # settings.default_max_tokens


@pytest.mark.parametrize(
    "top", [pytest.param(None, id="sampled-only"), pytest.param(3, id="top-3")]
)
async def test_logprobs(
    client: httpx.AsyncClient, fake_engine: FakeEngine, top: int | None
) -> None:
    fields: dict[str, Any] = {"logprobs": True}
    if top is not None:
        fields["top_logprobs"] = top
    body = await chat(client, chat_body(**fields))
    assert last_options(fake_engine).logprobs == (top or 0)
    content = body["choices"][0]["logprobs"]["content"]
    assert len(content) == body["usage"]["completion_tokens"]
    assert "".join(entry["token"] for entry in content) == DEFAULT_REPLY
    for entry in content:
        assert isinstance(entry["logprob"], float)
        assert entry["bytes"] == list(entry["token"].encode())
        assert len(entry["top_logprobs"]) == (top or 0)
        for alternative in entry["top_logprobs"]:
            assert set(alternative) == {"token", "logprob", "bytes"}


async def test_n_choices(client: httpx.AsyncClient) -> None:
    body = await chat(client, chat_body(n=3, temperature=0.9))
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 3 * REPLY_TOKENS


async def test_stop_sequences(client: httpx.AsyncClient) -> None:
    body = await chat(client, chat_body(stop=["France"]))
    assert body["choices"][0]["message"]["content"] == "The capital of "
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        pytest.param({"type": "json_object"}, StructuredOutput(json_object=True), id="json_object"),
        pytest.param(
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "strict": True,
                    "schema": {"type": "object", "properties": {"answer": {"type": "string"}}},
                },
            },
            StructuredOutput(
                json_schema={"type": "object", "properties": {"answer": {"type": "string"}}}
            ),
            id="json_schema",
        ),
    ],
)
async def test_response_format_constrains_the_output(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    response_format: dict[str, Any],
    expected: StructuredOutput,
) -> None:
    body = await chat(client, chat_body(response_format=response_format))
    assert last_options(fake_engine).structured == expected
    assert json.loads(body["choices"][0]["message"]["content"]) == {"answer": "Paris"}


async def test_response_format_text_is_unconstrained(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await chat(client, chat_body(response_format={"type": "text"}))
    assert last_options(fake_engine).structured is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"choice": ["yes", "no"]}, StructuredOutput(choice=("yes", "no")), id="choice"
        ),
        pytest.param({"regex": "[0-9]+"}, StructuredOutput(regex="[0-9]+"), id="regex"),
        pytest.param(
            {"json": {"type": "object"}},
            StructuredOutput(json_schema={"type": "object"}),
            id="json-schema-object",
        ),
        pytest.param(
            {"json": '{"type": "object"}'},
            StructuredOutput(json_schema={"type": "object"}),
            id="json-schema-string",
        ),
        pytest.param({"json_object": True}, StructuredOutput(json_object=True), id="json_object"),
        pytest.param(
            {"grammar": 'root ::= "a"'}, StructuredOutput(grammar='root ::= "a"'), id="grammar"
        ),
    ],
)
async def test_structured_outputs_extension_is_mapped(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    spec: dict[str, Any],
    expected: StructuredOutput,
) -> None:
    await chat(client, chat_body(structured_outputs=spec))
    assert last_options(fake_engine).structured == expected


async def test_structured_choice_output_is_the_choice(client: httpx.AsyncClient) -> None:
    body = await chat(client, chat_body(structured_outputs={"choice": ["yes", "no"]}))
    assert body["choices"][0]["message"]["content"] == "yes"


async def test_structured_outputs_json_must_be_valid_json(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=chat_body(structured_outputs={"json": "{not json"}))
    assert_openai_error(response, 400, param="structured_outputs.json")


async def test_sampling_fields_reach_the_engine(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await chat(
        client,
        chat_body(temperature=0.0, top_p=0.5, seed=7, stop="x", top_k=5, logit_bias={"3": 1.5}),
    )
    options = last_options(fake_engine)
    assert (options.temperature, options.top_p, options.seed) == (0.0, 0.5, 7)
    assert (options.stop, options.top_k, options.logit_bias) == (("x",), 5, {3: 1.5})


async def test_ignored_openai_fields_are_accepted(client: httpx.AsyncClient) -> None:
    body = await chat(client, chat_body(user="u-1", metadata={"k": "v"}, store=True))
    assert body["choices"][0]["message"]["content"] == DEFAULT_REPLY

"""POST /v1/messages on the fake engine: the answer's shape, every stop reason, max_tokens as a
ceiling clamped to the context, the prompt the conversation makes, the sampling fields, and every
field the SDK can send that is accepted and ignored."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from service.engine.base import StructuredOutput
from service.engine.fake import FakeEngine
from tests.api.anthropic.messages import MESSAGES, messages_body, sdk_client
from tests.api.helpers import client_requests, make_app, serve
from tests.conftest import FAKE_MODEL


def prompt_of(engine: FakeEngine) -> str:
    return engine.tokenizer.decode(engine.requests[-1].prompt_token_ids)


async def test_an_answer_in_anthropics_shape(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    response = await client.post(MESSAGES, json=messages_body())
    assert response.status_code == 200, response.text
    assert response.headers["request-id"] == response.headers["x-request-id"]
    message = response.json()
    assert message["id"].startswith("msg_")
    assert (message["type"], message["role"], message["model"]) == (
        "message",
        "assistant",
        FAKE_MODEL,
    )
    assert message["content"] == [{"type": "text", "text": "The capital of France is Paris."}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    prompt = len(fake_engine.requests[-1].prompt_token_ids)
    assert message["usage"] == {"input_tokens": prompt, "output_tokens": 6}


async def test_the_sdk_reads_the_answer(fake_engine: FakeEngine) -> None:
    async with sdk_client(make_app(fake_engine)) as client:
        message = await client.messages.create(
            model=FAKE_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == "The capital of France is Paris."
        assert message.stop_reason == "end_turn"
        assert message._request_id  # the SDK read the request-id header


@pytest.mark.parametrize(
    ("fields", "reason", "sequence"),
    [
        pytest.param({"max_tokens": 3}, "max_tokens", None, id="max_tokens"),
        pytest.param({"stop_sequences": ["France"]}, "stop_sequence", "France", id="stop"),
        pytest.param({"stop_sequences": ["nowhere"]}, "end_turn", None, id="end_turn"),
    ],
)
async def test_stop_reasons(
    client: httpx.AsyncClient, fields: dict[str, Any], reason: str, sequence: str | None
) -> None:
    message = (await client.post(MESSAGES, json=messages_body(**fields))).json()
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


async def test_max_tokens_is_a_ceiling_clamped_to_the_context() -> None:
    engine = FakeEngine(max_model_len=32, reply="word " * 100)
    async with serve(make_app(engine)) as client:
        response = await client.post(MESSAGES, json=messages_body(max_tokens=32_000))
    assert response.status_code == 200, response.text
    message = response.json()
    room = 32 - len(engine.requests[-1].prompt_token_ids)
    assert engine.requests[-1].options.max_tokens == room
    assert message["usage"]["output_tokens"] == room
    assert message["stop_reason"] == "model_context_window_exceeded"


async def test_a_cut_under_the_requested_ceiling_is_max_tokens() -> None:
    engine = FakeEngine(max_model_len=32, reply="word " * 100)
    async with serve(make_app(engine)) as client:
        message = (await client.post(MESSAGES, json=messages_body(max_tokens=5))).json()
    assert message["stop_reason"] == "max_tokens"


async def test_max_tokens_zero_runs_the_prompt_and_answers_nothing(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    response = await client.post(MESSAGES, json=messages_body(max_tokens=0))
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["content"] == [] and message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 0
    assert len(client_requests(fake_engine)) == 1  # this prompt (start-up's aside)


async def test_the_conversation_becomes_the_prompt(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = messages_body(
        system=[
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=1; cch=abc;"},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
        ]
    )
    body["messages"] = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "user", "content": [{"type": "text", "text": "Answer in one word."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Easy one.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Paris."},
            ],
        },
        {"role": "user", "content": "And Italy?"},
    ]
    response = await client.post(MESSAGES, json=body)
    assert response.status_code == 200, response.text
    assert prompt_of(fake_engine) == (
        "system: Be brief. user: Capital of France?\n\nAnswer in one word. "
        "assistant: Paris. user: And Italy? assistant:"
    )


async def test_a_final_assistant_message_is_continued(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = messages_body()
    body["messages"].append({"role": "assistant", "content": "The answer is"})
    response = await client.post(MESSAGES, json=body)
    assert response.status_code == 200, response.text
    assert prompt_of(fake_engine) == "user: hi assistant: The answer is"


async def test_a_system_message_in_the_messages_joins_the_system_turn(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = messages_body(system="Be brief.")
    body["messages"].insert(0, {"role": "system", "content": "Answer in French."})
    response = await client.post(MESSAGES, json=body)
    assert response.status_code == 200, response.text
    assert prompt_of(fake_engine) == "system: Be brief.\n\nAnswer in French. user: hi assistant:"


async def test_sampling_fields_reach_the_engine(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = messages_body(temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["END", "STOP"])
    assert (await client.post(MESSAGES, json=body)).status_code == 200
    options = fake_engine.requests[-1].options
    assert (options.temperature, options.top_p, options.top_k) == (0.2, 0.9, 40)
    assert options.stop == ("END", "STOP")
    assert (await client.post(MESSAGES, json=messages_body())).status_code == 200
    options = fake_engine.requests[-1].options
    assert (options.temperature, options.top_p, options.top_k) == (1.0, 1.0, 0)


async def test_the_sdk_sends_sampling_fields_through_extra_body(fake_engine: FakeEngine) -> None:
    async with sdk_client(make_app(fake_engine)) as client:
        await client.messages.create(
            model=FAKE_MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"temperature": 0.0, "top_k": 1},
        )
    options = fake_engine.requests[-1].options
    assert (options.temperature, options.top_k) == (0.0, 1)


async def test_output_config_format_constrains_the_text(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = messages_body(output_config={"format": {"type": "json_schema", "schema": schema}})
    message = (await client.post(MESSAGES, json=body)).json()
    assert fake_engine.requests[-1].options.structured == StructuredOutput(json_schema=schema)
    assert message["content"] == [{"type": "text", "text": '{"city": "Paris"}'}]


async def test_an_adapter_is_a_model(fake_engine: FakeEngine, tmp_path: Any) -> None:
    app = make_app(fake_engine, lora_modules=[f"french={tmp_path}"])
    async with serve(app) as client:
        message = (await client.post(MESSAGES, json=messages_body(model="french"))).json()
    assert message["model"] == "french"
    assert fake_engine.requests[-1].adapter == "french"


# Every field of MessageCreateParams (anthropic 2.12 and 2.17) that changes nothing here, at a
# value a client may send; thinking is accepted without a reasoning parser.
ACCEPTED: list[Any] = [
    pytest.param({"cache_control": {"type": "ephemeral", "ttl": "1h"}}, id="cache_control"),
    pytest.param({"container": "container_011"}, id="container-id"),
    pytest.param({"container": {"id": None, "skills": []}}, id="container"),
    pytest.param({"diagnostics": {"previous_message_id": "msg_1"}}, id="diagnostics"),
    pytest.param({"inference_geo": "us"}, id="inference_geo"),
    pytest.param({"metadata": {"user_id": "user-1"}}, id="metadata"),
    pytest.param({"service_tier": "standard_only"}, id="service_tier"),
    pytest.param({"speed": "fast"}, id="speed"),
    pytest.param({"user_profile_id": "prof_1"}, id="user_profile_id"),
    pytest.param({"workspace_id": "wrkspc_1"}, id="workspace_id"),
    pytest.param({"output_config": {"effort": "low"}}, id="effort"),
    pytest.param({"thinking": {"type": "enabled", "budget_tokens": 1024}}, id="thinking-enabled"),
    pytest.param({"thinking": {"type": "adaptive", "display": "omitted"}}, id="thinking-adaptive"),
    pytest.param({"thinking": {"type": "disabled"}}, id="thinking-disabled"),
    pytest.param({"thinking": {"type": "between_tools"}}, id="thinking-between-tools"),
    pytest.param({"stream": False}, id="stream-false"),
]


@pytest.mark.parametrize("fields", ACCEPTED)
async def test_fields_accepted_and_ignored(
    client: httpx.AsyncClient, fake_engine: FakeEngine, fields: dict[str, Any]
) -> None:
    plain = (await client.post(MESSAGES, json=messages_body(max_tokens=2048))).json()
    response = await client.post(MESSAGES, json=messages_body(max_tokens=2048, **fields))
    assert response.status_code == 200, response.text
    assert response.json()["content"] == plain["content"]
    assert fake_engine.requests[-1].options == fake_engine.requests[-2].options


async def test_the_version_and_beta_headers_are_accepted(fake_engine: FakeEngine) -> None:
    headers = {"anthropic-beta": "fast-mode-2026-02-01,context-1m", "anthropic-version": "x"}
    async with sdk_client(make_app(fake_engine), default_headers=headers) as client:
        message = await client.messages.create(
            model=FAKE_MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content


async def test_the_sdk_sends_an_earlier_answer_back_unchanged(fake_engine: FakeEngine) -> None:
    async with sdk_client(make_app(fake_engine)) as client:
        first = await client.messages.create(
            model=FAKE_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        second = await client.messages.create(
            model=FAKE_MODEL,
            max_tokens=16,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": "again"},
            ],
        )
    assert second.stop_reason == "end_turn"
    assert isinstance(second, anthropic.types.Message)


async def test_the_sdks_beta_namespace_reaches_the_same_route(fake_engine: FakeEngine) -> None:
    async with sdk_client(make_app(fake_engine)) as client:
        message = await client.beta.messages.create(
            model=FAKE_MODEL,
            max_tokens=8,
            messages=[{"role": "user", "content": "hi"}],
            betas=["context-1m-2025-08-07"],  # sent as the anthropic-beta header
        )
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.beta.messages.create(
                model=FAKE_MODEL,
                max_tokens=8,
                messages=[{"role": "user", "content": "hi"}],
                context_management={"edits": []},
            )
    assert message.content[0].type == "text"
    assert "context_management" in refused.value.message

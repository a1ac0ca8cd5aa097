"""service.services.core.sampling: token budgets and OpenAI fields -> engine SamplingOptions."""

from __future__ import annotations

from typing import Any

import pytest

from service.config import Settings
from service.engine.base import SamplingOptions, StructuredOutput
from service.engine.fake import FakeEngine
from service.errors import ContextLengthError, InvalidRequestError, ModelNotFoundError
from service.schemas.chat import ChatCompletionRequest
from service.schemas.completions import CompletionRequest
from service.services.core.sampling import sampling_options, token_budget
from service.services.registry import ModelChoice, select_model

SETTINGS = Settings(model="m", served_model_name=None, max_logprobs=5)


def completion(**fields: Any) -> CompletionRequest:
    return CompletionRequest.model_validate({"model": "m", "prompt": "hi", **fields})


def chat(**fields: Any) -> ChatCompletionRequest:
    messages = [{"role": "user", "content": "hi"}]
    return ChatCompletionRequest.model_validate({"model": "m", "messages": messages, **fields})


def options(request: CompletionRequest | ChatCompletionRequest, **kw: Any) -> SamplingOptions:
    kw.setdefault("max_tokens", 10)
    kw.setdefault("logprobs", None)
    return sampling_options(request, settings=SETTINGS, **kw)


@pytest.mark.parametrize(
    ("requested", "prompt_tokens", "default_cap", "expected"),
    [
        pytest.param(None, 10, 16, 16, id="default-cap"),
        pytest.param(None, 250, 16, 6, id="default-cap-bounded-by-room"),
        pytest.param(None, 255, 16, 1, id="one-token-of-room"),
        pytest.param(5, 10, 16, 5, id="requested"),
        pytest.param(100, 10, 16, 100, id="requested-above-default-cap"),
        pytest.param(246, 10, 16, 246, id="requested-fills-context-exactly"),
    ],
)
def test_token_budget(
    requested: int | None, prompt_tokens: int, default_cap: int, expected: int
) -> None:
    budget = token_budget(
        requested,
        prompt_tokens=prompt_tokens,
        max_model_len=256,
        default_cap=default_cap,
        prompt_param="prompt",
    )
    assert budget == expected


@pytest.mark.parametrize(
    "prompt_tokens", [pytest.param(256, id="full"), pytest.param(300, id="over")]
)
def test_token_budget_without_room_names_the_prompt(prompt_tokens: int) -> None:
    with pytest.raises(ContextLengthError) as caught:
        token_budget(
            None,
            prompt_tokens=prompt_tokens,
            max_model_len=256,
            default_cap=16,
            prompt_param="messages",
        )
    assert caught.value.param == "messages"
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.status_code == 400
    assert "256" in caught.value.message
    assert str(prompt_tokens) in caught.value.message


def test_token_budget_over_the_context_names_max_tokens_and_the_numbers() -> None:
    with pytest.raises(ContextLengthError) as caught:
        token_budget(
            247, prompt_tokens=10, max_model_len=256, default_cap=16, prompt_param="prompt"
        )
    assert caught.value.param == "max_tokens"
    for number in ("256", "257", "10", "247"):
        assert number in caught.value.message


def test_select_model() -> None:
    engine = FakeEngine()
    assert select_model("m", SETTINGS, engine) == ModelChoice("m", adapter=None)
    with pytest.raises(ModelNotFoundError) as caught:
        select_model("gpt-4o", SETTINGS, engine)
    assert caught.value.param == "model"
    assert "gpt-4o" in caught.value.message
    alias = Settings(model="org/m", served_model_name="alias")
    assert select_model("alias", alias, engine) == ModelChoice("alias", adapter=None)
    with pytest.raises(ModelNotFoundError):
        select_model("org/m", alias, engine)


def test_defaults() -> None:
    result = options(completion(), max_tokens=7)
    assert result == SamplingOptions(max_tokens=7)


def test_every_field_is_mapped() -> None:
    request = completion(
        n=2,
        temperature=0.3,
        top_p=0.8,
        top_k=50,
        min_p=0.1,
        presence_penalty=1.0,
        frequency_penalty=-1.0,
        repetition_penalty=1.3,
        seed=-5,
        stop="END",
        stop_token_ids=[2, 3],
        include_stop_str_in_output=True,
        ignore_eos=True,
        min_tokens=4,
        logit_bias={"11": -2.5},
        skip_special_tokens=False,
    )
    result = options(request, max_tokens=9, logprobs=3, prompt_logprobs=3)
    assert result == SamplingOptions(
        max_tokens=9,
        n=2,
        temperature=0.3,
        top_p=0.8,
        top_k=50,
        min_p=0.1,
        presence_penalty=1.0,
        frequency_penalty=-1.0,
        repetition_penalty=1.3,
        seed=-5,
        stop=("END",),
        stop_token_ids=(2, 3),
        include_stop_str_in_output=True,
        ignore_eos=True,
        min_tokens=4,
        logprobs=3,
        prompt_logprobs=3,
        logit_bias={11: -2.5},
        skip_special_tokens=False,
    )


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        pytest.param({"top_k": -1}, "top_k", 0, id="top_k-minus-one-disables"),
        pytest.param({"top_k": 0}, "top_k", 0, id="top_k-zero-disables"),
        pytest.param({"temperature": 0}, "temperature", 0.0, id="greedy-kept"),
        pytest.param({"stop": ["a", "b"]}, "stop", ("a", "b"), id="stop-list"),
        pytest.param({"stop": None}, "stop", (), id="stop-none"),
        pytest.param({"logit_bias": {}}, "logit_bias", None, id="empty-logit-bias"),
        pytest.param({"n": 3}, "n", 3, id="n-with-default-temperature"),
    ],
)
def test_value_mapping(fields: dict[str, Any], attribute: str, expected: object) -> None:
    assert getattr(options(completion(**fields)), attribute) == expected


@pytest.mark.parametrize(
    ("fields", "kw", "param"),
    [
        pytest.param({"logit_bias": {"x1": 1}}, {}, "logit_bias", id="logit_bias-non-int-key"),
        pytest.param({"logit_bias": {"-3": 1}}, {}, "logit_bias", id="logit_bias-negative"),
        pytest.param({}, {"logprobs": 6}, "logprobs", id="logprobs-over-server-max"),
        pytest.param({"min_tokens": 11}, {"max_tokens": 10}, "min_tokens", id="min-over-max"),
        pytest.param({"n": 2, "temperature": 0}, {}, "n", id="n-with-greedy"),
        pytest.param(
            {"structured_outputs": {"json": "{"}},
            {},
            "structured_outputs.json",
            id="structured-json-string-invalid",
        ),
    ],
)
def test_invalid_combinations(fields: dict[str, Any], kw: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        options(completion(**fields), **kw)
    assert caught.value.param == param
    assert caught.value.status_code == 400


def test_min_tokens_equal_to_max_tokens_is_fine() -> None:
    assert options(completion(min_tokens=10), max_tokens=10).min_tokens == 10


def test_logprobs_at_the_server_max_is_fine() -> None:
    assert options(completion(), logprobs=5).logprobs == 5


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(chat(response_format={"type": "text"}), None, id="text"),
        pytest.param(
            chat(response_format={"type": "json_object"}),
            StructuredOutput(json_object=True),
            id="json_object",
        ),
        pytest.param(
            chat(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "n", "schema": {"type": "array"}},
                }
            ),
            StructuredOutput(json_schema={"type": "array"}),
            id="json_schema",
        ),
        pytest.param(
            chat(structured_outputs={"choice": ["a", "b"]}),
            StructuredOutput(choice=("a", "b")),
            id="chat-choice",
        ),
        pytest.param(
            completion(structured_outputs={"regex": r"\d+"}),
            StructuredOutput(regex=r"\d+"),
            id="completion-regex",
        ),
        pytest.param(
            completion(structured_outputs={"json": '{"type": "string"}'}),
            StructuredOutput(json_schema={"type": "string"}),
            id="json-as-string",
        ),
        pytest.param(
            completion(structured_outputs={"grammar": "root ::= x"}),
            StructuredOutput(grammar="root ::= x"),
            id="grammar",
        ),
        pytest.param(
            completion(structured_outputs={"json_object": True}),
            StructuredOutput(json_object=True),
            id="json_object-extension",
        ),
    ],
)
def test_structured_output_mapping(
    request_: CompletionRequest | ChatCompletionRequest, expected: StructuredOutput | None
) -> None:
    assert options(request_).structured == expected

"""SamplingOptions -> installed SamplingParams; vLLM outputs (0.26 and 0.32 shapes) -> chunks."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from vllm.exceptions import VLLMValidationError
from vllm.logprobs import FlatLogprobs, Logprob
from vllm.outputs import CompletionOutput, RequestOutput
from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

from service.engine.base import SamplingOptions, StructuredOutput, TokenLogprob
from service.engine.vllm import compat, convert

# --- sampling_params


def params(**options: Any) -> Any:
    stream = options.pop("stream", False)
    return convert.sampling_params(SamplingOptions(**{"max_tokens": 8, **options}), stream=stream)


@pytest.mark.parametrize(
    ("options", "attribute", "expected"),
    [
        pytest.param({"max_tokens": 7}, "max_tokens", 7, id="max_tokens"),
        pytest.param({"n": 3}, "n", 3, id="n"),
        pytest.param({"temperature": 0.7}, "temperature", 0.7, id="temperature"),
        pytest.param({"top_p": 0.9}, "top_p", 0.9, id="top_p"),
        pytest.param({"top_k": 5}, "top_k", 5, id="top_k"),
        pytest.param({"min_p": 0.1}, "min_p", 0.1, id="min_p"),
        pytest.param({"presence_penalty": 0.5}, "presence_penalty", 0.5, id="presence"),
        pytest.param({"frequency_penalty": -0.5}, "frequency_penalty", -0.5, id="frequency"),
        pytest.param({"repetition_penalty": 1.2}, "repetition_penalty", 1.2, id="repetition"),
        pytest.param({"seed": 42}, "seed", 42, id="seed"),
        pytest.param({"stop": ("END", "\n\n")}, "stop", ["END", "\n\n"], id="stop"),
        pytest.param({}, "stop", [], id="no-stop"),
        pytest.param({"stop_token_ids": (7, 8)}, "stop_token_ids", [7, 8], id="stop_token_ids"),
        pytest.param({}, "stop_token_ids", [], id="no-stop_token_ids"),
        pytest.param(
            {"include_stop_str_in_output": True}, "include_stop_str_in_output", True, id="incl-stop"
        ),
        pytest.param({"ignore_eos": True}, "ignore_eos", True, id="ignore_eos"),
        pytest.param({"min_tokens": 2}, "min_tokens", 2, id="min_tokens"),
        pytest.param({"logprobs": 3}, "logprobs", 3, id="logprobs"),
        pytest.param({"logprobs": 0}, "logprobs", 0, id="logprobs-sampled-only"),
        pytest.param({}, "logprobs", None, id="no-logprobs"),
        pytest.param({"prompt_logprobs": 2}, "prompt_logprobs", 2, id="prompt_logprobs"),
        pytest.param({"logit_bias": {5: -100.0}}, "logit_bias", {5: -100.0}, id="logit_bias"),
        pytest.param({"skip_special_tokens": False}, "skip_special_tokens", False, id="special"),
        pytest.param({"stream": True}, "output_kind", RequestOutputKind.DELTA, id="stream-delta"),
        pytest.param({}, "output_kind", RequestOutputKind.FINAL_ONLY, id="final-only"),
        pytest.param({}, "structured_outputs", None, id="unstructured"),
    ],
)
def test_sampling_options_map_onto_installed_sampling_params(
    options: dict[str, Any], attribute: str, expected: Any
) -> None:
    sampling = params(**options)
    assert isinstance(sampling, SamplingParams)
    assert getattr(sampling, attribute) == expected


def test_top_k_zero_is_a_disabled_value_vllm_accepts() -> None:
    sampling = params(top_k=0)
    assert sampling.top_k == compat.TOP_K_DISABLED
    assert sampling.top_k in (0, -1)  # the two values every supported release reads as "off"


@pytest.mark.parametrize(
    ("structured", "expected"),
    [
        pytest.param(
            StructuredOutput(json_schema={"type": "object", "required": ["a"]}),
            {"json": {"type": "object", "required": ["a"]}},
            id="json-schema",
        ),
        pytest.param(StructuredOutput(json_object=True), {"json_object": True}, id="json-object"),
        pytest.param(StructuredOutput(regex=r"\d+"), {"regex": r"\d+"}, id="regex"),
        pytest.param(
            StructuredOutput(choice=("yes", "no")), {"choice": ["yes", "no"]}, id="choice"
        ),
        pytest.param(
            StructuredOutput(grammar="root ::= 'a'"), {"grammar": "root ::= 'a'"}, id="gbnf"
        ),
    ],
)
def test_structured_output_sets_exactly_its_constraint(
    structured: StructuredOutput, expected: dict[str, Any]
) -> None:
    spec = params(structured=structured).structured_outputs
    assert isinstance(spec, StructuredOutputsParams)
    constraints = ("json", "json_object", "regex", "choice", "grammar", "structural_tag")
    assert {name: getattr(spec, name) for name in constraints if getattr(spec, name)} == expected


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"temperature": 3.0}, id="temperature"),
        pytest.param({"top_p": 0.0}, id="top_p"),
        pytest.param({"n": 0}, id="n"),
        pytest.param({"presence_penalty": 3.0}, id="presence"),
        pytest.param({"repetition_penalty": 0.0}, id="repetition"),
        pytest.param({"min_p": 2.0}, id="min_p"),
        pytest.param({"max_tokens": 0}, id="max_tokens"),
        pytest.param({"min_tokens": -1}, id="min_tokens"),
        pytest.param({"logprobs": -2}, id="logprobs"),
        pytest.param({"structured": StructuredOutput()}, id="empty-structured"),
    ],
)
def test_bad_values_raise_the_error_the_adapter_maps_to_400(options: dict[str, Any]) -> None:
    with pytest.raises(VLLMValidationError) as info:
        params(**options)
    assert isinstance(info.value, compat.CLIENT_ERRORS)


# --- chunk: the same field names in 0.26 and 0.32 (research notes, section 6)


@dataclass
class Logprob026:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput026:
    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Any]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    lora_request: Any = None


@dataclass
class RequestOutput026:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: list[dict[int, Any] | None] | None
    outputs: list[Any]
    finished: bool
    metrics: Any = None
    lora_request: Any = None
    num_cached_tokens: int | None = None
    kv_transfer_params: dict[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class Api:
    logprob: Callable[..., Any]
    completion: Callable[..., Any]
    request: Callable[..., Any]


@pytest.fixture(
    params=[
        pytest.param(Api(Logprob026, CompletionOutput026, RequestOutput026), id="vllm-0.26"),
        pytest.param(Api(Logprob, CompletionOutput, RequestOutput), id="vllm-0.32"),
    ]
)
def api(request: pytest.FixtureRequest) -> Api:
    return request.param  # type: ignore[no-any-return]


def completion(
    api: Api,
    *,
    index: int = 0,
    text: str = "",
    token_ids: Sequence[int] = (),
    logprobs: Any = None,
    finish_reason: str | None = None,
    stop_reason: int | str | None = None,
) -> Any:
    return api.completion(
        index=index,
        text=text,
        token_ids=list(token_ids),
        cumulative_logprob=None,
        logprobs=logprobs,
        finish_reason=finish_reason,
        stop_reason=stop_reason,
    )


def request_output(
    api: Api,
    outputs: list[Any],
    *,
    prompt_token_ids: list[int] | None = None,
    prompt_logprobs: Any = None,
    finished: bool = False,
) -> Any:
    return api.request(
        request_id="req-1",
        prompt=None,
        prompt_token_ids=prompt_token_ids or [1, 2, 3],
        prompt_logprobs=prompt_logprobs,
        outputs=outputs,
        finished=finished,
    )


def options(**overrides: Any) -> SamplingOptions:
    return SamplingOptions(**{"max_tokens": 8, **overrides})


def test_chunk_carries_each_sequence_delta(api: Api) -> None:
    output = request_output(
        api,
        [
            completion(api, index=1, text=" world", token_ids=[21, 22]),
            completion(
                api, index=0, text="Hi", token_ids=[11], finish_reason="stop", stop_reason=2
            ),
        ],
        prompt_token_ids=[1, 2, 3, 4],
    )
    chunk = convert.chunk(output, options(n=2))
    assert [(s.index, s.text, list(s.token_ids)) for s in chunk.sequences] == [
        (1, " world", [21, 22]),
        (0, "Hi", [11]),
    ]
    assert [(s.finish_reason, s.stop_reason) for s in chunk.sequences] == [
        (None, None),
        ("stop", 2),
    ]
    assert [s.logprobs for s in chunk.sequences] == [None, None]
    assert chunk.num_prompt_tokens == 4
    assert chunk.finished is False
    assert chunk.prompt_logprobs is None


def test_finished_flag_is_kept(api: Api) -> None:
    output = request_output(api, [completion(api, finish_reason="length")], finished=True)
    assert convert.chunk(output, options()).finished is True


def test_logprobs_give_the_sampled_token_and_the_top_n_by_rank(api: Api) -> None:
    lp = api.logprob
    entries = [
        {11: lp(-0.1, 1, "Hi"), 13: lp(-2.5, 2, "Yo"), 19: lp(-3.0, 3, "Hey")},
        # The sampled token (12) ranks 5th, outside the top 2; the dict is not in rank order.
        {12: lp(-4.0, 5, " there"), 15: lp(-1.0, 2, " all"), 14: lp(-0.5, 1, " world")},
    ]
    output = request_output(
        api, [completion(api, text="Hi there", token_ids=[11, 12], logprobs=entries)]
    )
    assert convert.chunk(output, options(logprobs=2)).sequences[0].logprobs == [
        TokenLogprob(11, "Hi", -0.1, ((11, "Hi", -0.1), (13, "Yo", -2.5))),
        TokenLogprob(12, " there", -4.0, ((14, " world", -0.5), (15, " all", -1.0))),
    ]


def test_logprobs_zero_gives_the_sampled_token_alone(api: Api) -> None:
    entries = [{12: api.logprob(-4.0, 3, "b"), 14: api.logprob(-0.5, 1, "d")}]
    output = request_output(api, [completion(api, token_ids=[12], logprobs=entries)])
    assert convert.chunk(output, options(logprobs=0)).sequences[0].logprobs == [
        TokenLogprob(12, "b", -4.0, ())
    ]


def test_logprobs_not_asked_for_are_left_out(api: Api) -> None:
    entries = [{12: api.logprob(-4.0, 1, "b")}]
    output = request_output(api, [completion(api, token_ids=[12], logprobs=entries)])
    assert convert.chunk(output, options()).sequences[0].logprobs is None


def test_infinite_logprobs_become_a_finite_floor(api: Api) -> None:
    entries = [
        {
            12: api.logprob(-math.inf, 3, "b"),
            14: api.logprob(-0.5, 1, "d"),
            15: api.logprob(-math.inf, 2, "e"),
        }
    ]
    output = request_output(api, [completion(api, token_ids=[12], logprobs=entries)])
    (position,) = convert.chunk(output, options(logprobs=2)).sequences[0].logprobs or []
    values = [position.logprob, *(value for _, _, value in position.top)]
    assert all(math.isfinite(value) for value in values)
    assert position.logprob < -100 and position.top[1][2] < -100
    json.dumps(values, allow_nan=False)  # the response body must stay valid JSON


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        pytest.param(None, None, id="running"),
        pytest.param("stop", "stop", id="stop"),
        pytest.param("length", "length", id="length"),
        pytest.param("abort", "abort", id="abort"),
        pytest.param("repetition", "stop", id="repetition"),
        pytest.param("error", "stop", id="error"),
    ],
)
def test_finish_reasons_are_limited_to_the_openai_ones(
    api: Api, reason: str | None, expected: str | None
) -> None:
    output = request_output(api, [completion(api, finish_reason=reason)], finished=True)
    assert convert.chunk(output, options()).sequences[0].finish_reason == expected


def test_prompt_logprobs_keep_the_leading_none(api: Api) -> None:
    lp = api.logprob
    prompt_logprobs = [
        None,
        {2: lp(-1.5, 3, "x"), 9: lp(-0.2, 1, "y")},
        {3: lp(-0.3, 1, "z")},
    ]
    output = request_output(
        api, [completion(api)], prompt_token_ids=[1, 2, 3], prompt_logprobs=prompt_logprobs
    )
    chunk = convert.chunk(output, options(prompt_logprobs=1))
    assert chunk.prompt_logprobs == [
        None,
        TokenLogprob(2, "x", -1.5, ((9, "y", -0.2),)),
        TokenLogprob(3, "z", -0.3, ((3, "z", -0.3),)),
    ]
    assert chunk.num_prompt_tokens == 3


def test_prompt_logprobs_not_asked_for_are_left_out(api: Api) -> None:
    output = request_output(
        api, [completion(api)], prompt_logprobs=[None, {2: api.logprob(-1.0, 1, "x")}]
    )
    assert convert.chunk(output, options()).prompt_logprobs is None


def test_flat_logprobs_read_like_the_list_form() -> None:
    flat = FlatLogprobs()
    flat.append({12: Logprob(-4.0, 5, " there"), 14: Logprob(-0.5, 1, " world")})
    output = RequestOutput(
        request_id="req-1",
        prompt=None,
        prompt_token_ids=[1],
        prompt_logprobs=None,
        outputs=[CompletionOutput(0, " there", [12], None, flat)],
        finished=False,
    )
    assert convert.chunk(output, options(logprobs=1)).sequences[0].logprobs == [
        TokenLogprob(12, " there", -4.0, ((14, " world", -0.5),))
    ]

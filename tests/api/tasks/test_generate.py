"""/v1/generate on the fake engine: HF knobs -> engine options, beams, batches, limits, streaming.

The fake tokenizer counts words, so a prompt of k words is k tokens and the reply
"The capital of France is Paris." is 6.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.base import SamplingOptions
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from tests.api.helpers import assert_openai_error, fails_mid_stream, serve, sse_json
from tests.conftest import FAKE_MODEL

GENERATE = "/v1/generate"
PROMPT = "Once upon a time"  # 4 tokens
REPLY_TOKENS = len(DEFAULT_REPLY.split())


async def generate(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(GENERATE, json={"prompt": PROMPT, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def generate_calls(
    client: httpx.AsyncClient, engine: FakeEngine, **body: Any
) -> tuple[dict[str, Any], list[SamplingOptions]]:
    """The response, and the options of the engine calls it made."""
    before = len(engine.requests)
    result = await generate(client, **body)
    return result, [r.options for r in engine.requests[before:]]


# --------------------------------------------------------------------------- HF -> engine mapping
MAPPINGS = [
    pytest.param({}, {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "n": 1}, id="greedy"),
    pytest.param(
        {"do_sample": True, "temperature": 0.5, "top_k": 7, "top_p": 0.9},
        {"temperature": 0.5, "top_k": 7, "top_p": 0.9},
        id="sampling-knobs",
    ),
    pytest.param({"do_sample": True}, {"temperature": 1.0, "top_k": 50}, id="hf-sampling-defaults"),
    pytest.param({"max_new_tokens": 5}, {"max_tokens": 5}, id="max_new_tokens"),
    pytest.param({"max_length": 10}, {"max_tokens": 6}, id="max_length-counts-the-prompt"),
    pytest.param({"min_new_tokens": 3}, {"min_tokens": 3}, id="min_new_tokens"),
    pytest.param({"min_length": 9}, {"min_tokens": 5}, id="min_length-counts-the-prompt"),
    pytest.param({"min_length": 2}, {"min_tokens": 0}, id="min_length-inside-the-prompt"),
    pytest.param({"repetition_penalty": 1.3}, {"repetition_penalty": 1.3}, id="rep-penalty"),
    pytest.param({"no_repeat_ngram_size": 3}, {"no_repeat_ngram_size": 3}, id="no-repeat-ngram"),
    pytest.param({"seed": 42}, {"seed": 42}, id="seed"),
    pytest.param({"stop": "France"}, {"stop": ("France",)}, id="stop-string"),
    pytest.param({"stop": ["a", "b"]}, {"stop": ("a", "b")}, id="stop-list"),
    pytest.param(
        {"do_sample": True, "num_return_sequences": 3}, {"n": 3}, id="num_return_sequences"
    ),
    pytest.param({}, {"max_tokens": 16, "min_tokens": 0}, id="default-cap"),
    pytest.param({"prompt": "w " * 250}, {"max_tokens": 6}, id="default-cap-within-context"),
]


@pytest.mark.parametrize(("body", "expected"), MAPPINGS)
async def test_hf_knobs_reach_the_engine(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    _, calls = await generate_calls(client, fake_engine, **body)
    (options,) = calls
    assert {name: getattr(options, name) for name in expected} == expected


async def test_a_response(client: httpx.AsyncClient, fake_engine: FakeEngine) -> None:
    body = await generate(client, max_new_tokens=4)
    assert body["object"] == "generate"
    assert body["id"].startswith("generate-")
    assert body["model"] == FAKE_MODEL
    assert isinstance(body["created"], int)
    (result,) = body["results"]
    assert result["index"] == 0
    assert result["prompt_tokens"] == 4
    assert result["generations"] == [
        {"text": "The capital of France", "finish_reason": "length", "num_tokens": 4, "score": None}
    ]
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    prompt_ids = fake_engine.requests[-1].prompt_token_ids
    assert fake_engine.tokenizer.decode(prompt_ids) == PROMPT


async def test_a_batch_gives_one_result_per_prompt(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    prompts = ["one", "one two three", "one two"]
    body, calls = await generate_calls(
        client, fake_engine, prompt=None, prompts=prompts, max_length=5
    )
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert [r["prompt_tokens"] for r in body["results"]] == [1, 3, 2]
    # max_length counts each prompt's own tokens.
    assert [o.max_tokens for o in calls] == [4, 2, 3]
    assert [r["generations"][0]["num_tokens"] for r in body["results"]] == [4, 2, 3]
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 9, "total_tokens": 15}


async def test_sampled_sequences_are_all_returned_and_counted(client: httpx.AsyncClient) -> None:
    body = await generate(client, do_sample=True, num_return_sequences=3, seed=1)
    (result,) = body["results"]
    assert [g["text"] for g in result["generations"]] == [DEFAULT_REPLY] * 3
    assert body["usage"]["prompt_tokens"] == 4  # the prompt is counted once
    assert body["usage"]["completion_tokens"] == 3 * REPLY_TOKENS


async def test_the_model_is_optional_but_checked(client: httpx.AsyncClient) -> None:
    assert (await generate(client, model=FAKE_MODEL))["model"] == FAKE_MODEL
    response = await client.post(GENERATE, json={"prompt": PROMPT, "model": "other"})
    assert_openai_error(response, 404, param="model", code="model_not_found")


# --------------------------------------------------------------------------- beam search
# The fake engine always offers the same next token, so one beam runs to the length limit; the
# search itself is checked against transformers in tests/unit/tasks/test_beam_search.py and on the
# real engine in tests/integration/test_beam_oracle.py.
async def test_beam_search_is_one_engine_token_per_beam_and_round(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body, calls = await generate_calls(
        client, fake_engine, num_beams=4, max_new_tokens=5, length_penalty=0.5
    )
    # Five rounds of one running beam, each one greedy token with 2 x 4 top log-probabilities.
    assert len(calls) == 5
    assert {(o.max_tokens, o.temperature, o.logprobs) for o in calls} == {(1, 0.0, 8)}
    (result,) = body["results"]
    (generation,) = result["generations"]
    assert generation["num_tokens"] == 5 and generation["finish_reason"] == "length"
    # Each round's token scores -0.5: HF's score is the sum over length ** length_penalty.
    assert generation["score"] == pytest.approx(-2.5 / 5**0.5)
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (4, 5)


@pytest.mark.parametrize(
    "early_stopping", [pytest.param(True, id="true"), pytest.param(False, id="false"), "never"]
)
async def test_every_early_stopping_mode_is_accepted(
    client: httpx.AsyncClient, fake_engine: FakeEngine, early_stopping: bool | str
) -> None:
    body, calls = await generate_calls(
        client, fake_engine, num_beams=2, early_stopping=early_stopping, max_new_tokens=3
    )
    assert len(calls) == 3
    assert len(body["results"][0]["generations"]) == 1


async def test_beam_bans_ask_for_more_log_probabilities(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    _, calls = await generate_calls(
        client, fake_engine, num_beams=2, max_new_tokens=2, min_new_tokens=1
    )
    # Round one bans the EOS token (min_new_tokens), so it asks for one more candidate.
    assert [o.logprobs for o in calls] == [5, 4]


@pytest.mark.parametrize("num_beams", [pytest.param(16, id="16"), pytest.param(11, id="11")])
async def test_many_beams_are_served(
    client: httpx.AsyncClient, fake_engine: FakeEngine, num_beams: int
) -> None:
    _, calls = await generate_calls(client, fake_engine, num_beams=num_beams, max_new_tokens=2)
    assert {o.logprobs for o in calls} == {2 * num_beams}


async def test_beam_search_runs_once_per_prompt(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = await generate(client, prompt=None, prompts=["a b", "a b c"], num_beams=2, max_length=6)
    assert [r["generations"][0]["num_tokens"] for r in body["results"]] == [4, 3]
    assert [r["index"] for r in body["results"]] == [0, 1]


# --------------------------------------------------------------------------- rejected requests
def _conflict(body: dict[str, Any], param: str, id: str) -> Any:
    return pytest.param(body, param, "invalid_combination", id=id)


REJECTED = [
    _conflict({"max_new_tokens": 5, "max_length": 9}, "max_length", "max-new-and-max-length"),
    _conflict({"min_new_tokens": 1, "min_length": 5}, "min_length", "min-new-and-min-length"),
    _conflict({"temperature": 0.5}, "temperature", "temperature-greedy"),
    _conflict({"top_k": 5}, "top_k", "top_k-greedy"),
    _conflict({"top_p": 0.5}, "top_p", "top_p-greedy"),
    _conflict({"do_sample": True, "temperature": 0.0}, "temperature", "temperature-0-sampling"),
    _conflict({"num_return_sequences": 2}, "num_return_sequences", "n-greedy"),
    _conflict({"num_beams": 2, "do_sample": True}, "do_sample", "beams-with-sampling"),
    _conflict({"num_beams": 2, "num_return_sequences": 3}, "num_return_sequences", "n-over-beams"),
    _conflict({"num_beams": 2, "stop": "x"}, "stop", "stop-beams"),
    _conflict({"num_beams": 2, "repetition_penalty": 1.2}, "repetition_penalty", "rep-beams"),
    _conflict({"num_beams": 2, "stream": True}, "stream", "stream-beams"),
    _conflict({"length_penalty": 0.5}, "length_penalty", "length_penalty-no-beams"),
    _conflict({"early_stopping": "never"}, "early_stopping", "early_stopping-no-beams"),
    _conflict({"min_new_tokens": 9, "max_new_tokens": 5}, "min_new_tokens", "min-over-max"),
    _conflict({"min_length": 12, "max_length": 8}, "min_length", "min_length-over-max"),
    pytest.param({"max_length": 4}, "max_length", None, id="max_length-within-prompt"),
    pytest.param(
        {"max_new_tokens": 253}, "max_new_tokens", "context_length_exceeded", id="over-context"
    ),
    pytest.param(
        {"max_length": 300}, "max_length", "context_length_exceeded", id="max_length-over-context"
    ),
    pytest.param({"prompt": "w " * 256}, "prompt", "context_length_exceeded", id="no-room"),
    pytest.param({"prompt": None}, "prompt", None, id="neither-prompt-nor-prompts"),
    pytest.param({"prompts": ["a"]}, "prompt", None, id="both-prompt-and-prompts"),
    pytest.param({"num_beams": 17}, "num_beams", None, id="too-many-beams"),
]


@pytest.mark.parametrize(("body", "param", "code"), REJECTED)
async def test_a_bad_request_is_a_400_naming_the_field(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    body: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    calls = len(fake_engine.requests)
    response = await client.post(GENERATE, json={"prompt": PROMPT, **body})
    assert_openai_error(response, 400, param=param, code=code)
    assert len(fake_engine.requests) == calls


LIMITS = [
    pytest.param({"prompts": ["a", "b", "c"]}, 413, "prompts", "payload_too_large", id="batch"),
    pytest.param({"prompt": "x" * 51}, 413, "prompt", "payload_too_large", id="long-prompt"),
    pytest.param({"prompts": ["a", "x" * 51]}, 413, "prompts.1", None, id="long-batch-item"),
]


@pytest.mark.parametrize(("body", "status", "param", "code"), LIMITS)
async def test_input_limits(
    body: dict[str, Any], status: int, param: str, code: str | None
) -> None:
    settings = Settings(model=FAKE_MODEL, max_batch_size=2, max_text_chars=50)
    engine = FakeEngine()
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        assert_openai_error(await client.post(GENERATE, json=body), status, param=param, code=code)
        ok = await client.post(GENERATE, json={"prompts": ["a", "x" * 50], "max_new_tokens": 2})
        assert ok.status_code == 200, ok.text


# --------------------------------------------------------------------------- streaming
def texts_of(chunks: list[dict[str, Any]]) -> dict[tuple[int, int], str]:
    out: dict[tuple[int, int], str] = {}
    for chunk in chunks:
        for delta in chunk["results"]:
            key = (delta["index"], delta["sequence"])
            out[key] = out.get(key, "") + delta["delta"]
    return out


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"prompt": PROMPT, "stop": "France"}, id="one"),
        pytest.param(
            {"prompts": ["a", "b c"], "do_sample": True, "num_return_sequences": 2},
            id="batch-and-sequences",
        ),
    ],
)
async def test_a_stream_matches_the_whole_response(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    whole = (await client.post(GENERATE, json=body)).json()
    response = await client.post(GENERATE, json={**body, "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = sse_json(response.text)
    assert all(c["object"] == "generate.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    *deltas, last = chunks
    assert all(c["results"] and c.get("usage") is None for c in deltas)
    assert last["results"] == []
    assert last["usage"] == whole["usage"]
    sequences = {
        (r["index"], k): g for r in whole["results"] for k, g in enumerate(r["generations"])
    }
    assert texts_of(deltas) == {key: g["text"] for key, g in sequences.items()}
    finishes = [d for c in deltas for d in c["results"] if d["finish_reason"] is not None]
    assert {(d["index"], d["sequence"]): d["finish_reason"] for d in finishes} == {
        key: g["finish_reason"] for key, g in sequences.items()
    }
    assert len(finishes) == len(sequences)  # one finish per sequence, on its last delta


async def test_an_engine_failure_mid_stream_is_an_error_event_then_done(
    settings: Settings,
) -> None:
    engine = fails_mid_stream(RuntimeError("boom in /srv/secret.py"))
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        response = await client.post(GENERATE, json={"prompt": PROMPT, "stream": True})
    assert response.status_code == 200
    *deltas, error = sse_json(response.text)
    assert texts_of(deltas) == {(0, 0): "The capital"}
    assert error["error"]["code"] == "engine_error"
    assert "secret" not in response.text


# ------------------------------------------------------- no_repeat_ngram_size, setting turned off
@pytest.mark.parametrize("stream", [pytest.param(False, id="json"), pytest.param(True, id="sse")])
async def test_no_repeat_ngram_size_is_a_400_naming_the_setting_when_it_is_off(
    settings: Settings, stream: bool
) -> None:
    # Through the setting, as `python -m service --engine fake --no-repeat-ngram off` builds it.
    off = settings.model_copy(update={"engine": "fake", "no_repeat_ngram": "off"})
    app = create_app(off)
    async with serve(app) as client:
        engine = app.state.gateway.engine_state.engine
        assert isinstance(engine, FakeEngine) and not engine.supports_no_repeat_ngram
        body = {"prompt": PROMPT, "no_repeat_ngram_size": 3, "stream": stream}
        before = len(engine.requests)
        response = await client.post(GENERATE, json=body)
        error = assert_openai_error(
            response, 400, param="no_repeat_ngram_size", code="unsupported_parameter"
        )
        assert "GATEWAY_NO_REPEAT_NGRAM" in error["message"]
        assert len(engine.requests) == before  # answered before admission and the engine
        # 0 is the field's "off": such a request runs.
        await generate(client, no_repeat_ngram_size=0)


@pytest.mark.parametrize("setting", ["auto", "on"])
async def test_no_repeat_ngram_size_reaches_the_engine_when_it_is_on(
    settings: Settings, setting: str
) -> None:
    app = create_app(settings.model_copy(update={"engine": "fake", "no_repeat_ngram": setting}))
    async with serve(app) as client:
        engine = app.state.gateway.engine_state.engine
        assert isinstance(engine, FakeEngine)
        _, options = await generate_calls(client, engine, no_repeat_ngram_size=3)
    assert [o.no_repeat_ngram_size for o in options] == [3]

"""/v1/completions on the fake engine (reply: "The capital of France is Paris.", a token a word)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.engine.base import SamplingOptions
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from tests.api.helpers import COMPLETIONS, client_requests, completion_body
from tests.conftest import FAKE_MODEL

REPLY_TOKENS = len(DEFAULT_REPLY.split())


async def complete(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(COMPLETIONS, json=completion_body(**fields))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def last_options(engine: FakeEngine) -> SamplingOptions:
    return engine.requests[-1].options


async def test_string_prompt(client: httpx.AsyncClient) -> None:
    body = await complete(client, prompt="Tell me a fact")
    assert body["object"] == "text_completion"
    assert body["id"].startswith("cmpl-")
    assert body["model"] == FAKE_MODEL
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["text"] == DEFAULT_REPLY
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert body["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": REPLY_TOKENS,
        "total_tokens": 4 + REPLY_TOKENS,
    }


async def test_token_id_prompt_reaches_the_engine_unchanged(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    ids = fake_engine.tokenizer.encode("one two three")
    body = await complete(client, prompt=ids)
    assert fake_engine.requests[-1].prompt_token_ids == ids
    assert body["usage"]["prompt_tokens"] == 3
    assert [c["text"] for c in body["choices"]] == [DEFAULT_REPLY]


async def test_a_list_of_prompts_with_n_indexes_choices_prompt_major(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    # echo tells the choices apart: the fake's reply is the same for every prompt.
    body = await complete(client, prompt=["a b", "c d e", "f"], n=2, temperature=0.8, echo=True)
    assert [c["index"] for c in body["choices"]] == list(range(6))
    assert [c["text"].removesuffix(DEFAULT_REPLY) for c in body["choices"]] == [
        "a b",
        "a b",
        "c d e",
        "c d e",
        "f",
        "f",
    ]
    prompts = [request.prompt_token_ids for request in client_requests(fake_engine)]
    assert sorted(len(p) for p in prompts) == [1, 2, 3]
    assert body["usage"]["prompt_tokens"] == 2 + 3 + 1
    assert body["usage"]["completion_tokens"] == 6 * REPLY_TOKENS


async def test_a_list_of_token_id_prompts(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    first, second = fake_engine.tokenizer.encode("x y"), fake_engine.tokenizer.encode("z")
    body = await complete(client, prompt=[first, second])
    assert len(body["choices"]) == 2
    assert sorted(r.prompt_token_ids for r in client_requests(fake_engine)) == sorted(
        [first, second]
    )
    assert body["usage"]["prompt_tokens"] == 3


async def test_n_choices_for_one_prompt(client: httpx.AsyncClient) -> None:
    body = await complete(client, n=3, temperature=1.0)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 3 * REPLY_TOKENS


@pytest.mark.parametrize(
    "prompt",
    [pytest.param("Answer me", id="text"), pytest.param([5, 6], id="token-ids")],
)
async def test_echo_puts_the_prompt_before_the_completion(
    client: httpx.AsyncClient, fake_engine: FakeEngine, prompt: str | list[int]
) -> None:
    if isinstance(prompt, list):
        prompt = fake_engine.tokenizer.encode("Answer me")
    body = await complete(client, prompt=prompt, echo=True)
    assert body["choices"][0]["text"] == "Answer me" + DEFAULT_REPLY


@pytest.mark.parametrize("echo", [pytest.param(False, id="plain"), pytest.param(True, id="echo")])
async def test_logprobs_are_aligned_with_the_text(client: httpx.AsyncClient, echo: bool) -> None:
    body = await complete(client, prompt="Name a capital", logprobs=2, echo=echo)
    choice = body["choices"][0]
    logprobs = choice["logprobs"]
    count = REPLY_TOKENS + (3 if echo else 0)
    for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
        assert len(logprobs[key]) == count, key
    # The tokens spell the text, and each offset is where its token starts in it.
    assert "".join(logprobs["tokens"]) == choice["text"]
    for token, offset in zip(logprobs["tokens"], logprobs["text_offset"], strict=True):
        assert choice["text"][offset : offset + len(token)] == token
    generated = slice(3, None) if echo else slice(None)
    for token, top in zip(
        logprobs["tokens"][generated], logprobs["top_logprobs"][generated], strict=True
    ):
        assert token in top
    assert all(isinstance(lp, float) for lp in logprobs["token_logprobs"][generated])
    if echo:  # the first prompt token has nothing before it to be conditioned on
        assert logprobs["token_logprobs"][0] is None
        assert logprobs["top_logprobs"][0] is None


async def test_logprobs_zero_gives_the_sampled_tokens_only(client: httpx.AsyncClient) -> None:
    body = await complete(client, logprobs=0)
    logprobs = body["choices"][0]["logprobs"]
    assert len(logprobs["tokens"]) == REPLY_TOKENS
    for token, top in zip(logprobs["tokens"], logprobs["top_logprobs"], strict=True):
        assert list(top) == [token]


@pytest.mark.parametrize(
    ("include", "text"),
    [
        pytest.param(False, "The capital of France is ", id="stop-string-removed"),
        pytest.param(True, "The capital of France is Paris", id="include-stop-str-in-output"),
    ],
)
async def test_stop_sequences(client: httpx.AsyncClient, include: bool, text: str) -> None:
    body = await complete(client, stop=["Paris", "Berlin"], include_stop_str_in_output=include)
    choice = body["choices"][0]
    assert choice["text"] == text
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] == "Paris"


async def test_a_single_stop_string(client: httpx.AsyncClient) -> None:
    body = await complete(client, stop="France")
    assert body["choices"][0]["text"] == "The capital of "
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_max_tokens_ends_with_length(client: httpx.AsyncClient) -> None:
    body = await complete(client, max_tokens=3)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["text"] == "The capital of"
    assert body["usage"]["completion_tokens"] == 3
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 3


async def test_without_max_tokens_the_default_cap_applies(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await complete(client, ignore_eos=True)
    assert last_options(fake_engine).max_tokens == 16  # settings.default_max_tokens


async def test_without_max_tokens_the_cap_shrinks_to_the_room_left(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = await complete(client, prompt="w " * 250, ignore_eos=True)
    assert last_options(fake_engine).max_tokens == 6  # 256 - 250
    assert body["usage"]["total_tokens"] == 256
    assert body["choices"][0]["finish_reason"] == "length"


async def test_max_tokens_filling_the_context_exactly_is_accepted(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await complete(client, prompt="a b c d", max_tokens=252)
    assert last_options(fake_engine).max_tokens == 252


async def test_defaults_reach_the_engine(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await complete(client)
    options = last_options(fake_engine)
    assert (options.n, options.temperature, options.top_p, options.top_k) == (1, 1.0, 1.0, 0)
    assert (options.min_p, options.repetition_penalty, options.min_tokens) == (0.0, 1.0, 0)
    assert options.stop == ()
    assert options.logprobs is None
    assert options.prompt_logprobs is None
    assert options.logit_bias is None
    assert options.structured is None


async def test_vllm_sampling_extensions_reach_the_engine(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await complete(
        client,
        max_tokens=20,
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        min_p=0.05,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        repetition_penalty=1.2,
        min_tokens=4,
        ignore_eos=True,
        seed=1234,
        stop_token_ids=[7, 9],
        skip_special_tokens=False,
        logit_bias={"5": 10, "17": -100},
    )
    options = last_options(fake_engine)
    assert options.max_tokens == 20
    assert (options.temperature, options.top_p, options.top_k) == (0.7, 0.9, 40)
    assert (options.min_p, options.repetition_penalty) == (0.05, 1.2)
    assert (options.presence_penalty, options.frequency_penalty) == (0.5, -0.5)
    assert (options.min_tokens, options.ignore_eos, options.seed) == (4, True, 1234)
    assert options.stop_token_ids == (7, 9)
    assert options.skip_special_tokens is False
    assert options.logit_bias == {5: 10.0, 17: -100.0}


async def test_top_k_minus_one_means_disabled(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await complete(client, top_k=-1)
    assert last_options(fake_engine).top_k == 0


async def test_echo_with_logprobs_asks_the_engine_for_prompt_logprobs(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await complete(client, echo=True, logprobs=3)
    options = last_options(fake_engine)
    assert (options.logprobs, options.prompt_logprobs) == (3, 3)


async def test_ignore_eos_runs_to_max_tokens(client: httpx.AsyncClient) -> None:
    body = await complete(client, max_tokens=9, ignore_eos=True)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 9


async def test_ignored_openai_fields_are_accepted(client: httpx.AsyncClient) -> None:
    body = await complete(client, user="u-1", metadata={"k": "v"}, store=False)
    assert body["choices"][0]["text"] == DEFAULT_REPLY

"""/v1/classify on a fake engine whose label log-probabilities depend on the text
(tests/api/tasks/classify_engine.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.base import EngineRequest
from service.engine.fake import FakeEngine
from service.schemas.tasks import LabelPreset
from service.services.tasks.classify.calibration import CONTENT_FREE
from service.services.tasks.classify.labels import PRESETS
from tests.api.helpers import assert_openai_error, serve
from tests.api.tasks.classify_engine import CLASSIFY, classify, scoring_engine
from tests.conftest import FAKE_MODEL

SENTIMENT = ["positive", "negative", "neutral"]  # a custom label set (no preset's priors)


@pytest.fixture
def fake_engine() -> FakeEngine:
    return scoring_engine()


def scoring(engine: FakeEngine) -> list[EngineRequest]:
    """The engine requests classify calls made (not the app's start-up: its warm-up request
    and the presets' priors)."""
    return [
        r
        for r in engine.requests
        if r.options.prompt_logprobs is not None and not r.request_id.startswith("warmup")
    ]


def assert_distribution(result: dict[str, Any], labels: Sequence[str]) -> None:
    """Every label scored, in order; a distribution; `label` is its argmax."""
    scores = result["scores"]
    assert list(scores) == list(labels)
    assert sum(scores.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in scores.values())
    assert result["label"] == max(scores, key=scores.__getitem__)
    assert result["labels"] is None


# --------------------------------------------------------------------------- envelope
async def test_envelope(client: httpx.AsyncClient) -> None:
    body = await classify(client, text="I love it", labels="sentiment")
    assert set(body) == {"id", "object", "created", "model", "results", "usage"}
    assert body["id"].startswith("classify-")
    assert body["object"] == "classify"
    assert body["model"] == FAKE_MODEL
    assert isinstance(body["created"], int)
    assert len(body["results"]) == 1
    assert set(body["results"][0]) == {"index", "label", "labels", "scores"}
    assert body["results"][0]["index"] == 0
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_model_defaults_and_must_match(client: httpx.AsyncClient) -> None:
    body = await classify(client, text="I love it", labels="sentiment", model=FAKE_MODEL)
    assert body["model"] == FAKE_MODEL
    response = await client.post(
        CLASSIFY, json={"text": "I love it", "labels": "sentiment", "model": "other"}
    )
    assert_openai_error(response, 404, param="model", code="model_not_found")


# --------------------------------------------------------------------------- scores
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("I love this phone!", "positive", id="positive"),
        pytest.param("I hate waiting.", "negative", id="negative"),
    ],
)
async def test_sentiment_preset(client: httpx.AsyncClient, text: str, expected: str) -> None:
    result = (await classify(client, text=text, labels="sentiment"))["results"][0]
    assert_distribution(result, PRESETS["sentiment"].labels)
    assert result["label"] == expected
    assert result["scores"][expected] > 0.8


@pytest.mark.parametrize(
    ("preset", "text", "expected"),
    [
        pytest.param("news_topic", "A late goal won the match", "sports", id="news_topic"),
        pytest.param("customer_intent", "Where is my parcel?", "shipping", id="intent-shipping"),
        pytest.param("customer_intent", "Resend the invoice", "billing", id="intent-billing"),
    ],
)
async def test_presets(
    client: httpx.AsyncClient, preset: LabelPreset, text: str, expected: str
) -> None:
    result = (await classify(client, text=text, labels=preset))["results"][0]
    assert_distribution(result, PRESETS[preset].labels)
    assert result["label"] == expected


async def test_preset_descriptions_reach_the_prompt(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await classify(
        client,
        text="Resend the invoice",
        labels="customer_intent",
        label_descriptions={"billing": "money matters"},
    )
    prompt = fake_engine.tokenizer.decode(scoring(fake_engine)[-1].prompt_token_ids)
    assert "intent" in prompt
    assert "billing: money matters" in prompt  # the request's description wins
    assert "shipping: delivery, tracking and addresses" in prompt  # the preset's stays


async def test_labels_sharing_a_first_token_get_distinct_scores(
    client: httpx.AsyncClient,
) -> None:
    labels = ["very good", "very bad"]
    body = await classify(client, texts=["the food was bad", "the food was good"], labels=labels)
    bad, good = body["results"]
    assert_distribution(bad, labels)
    assert_distribution(good, labels)
    assert bad["label"] == "very bad"
    assert good["label"] == "very good"
    assert bad["scores"]["very bad"] > 0.9
    assert good["scores"]["very good"] > 0.9


async def test_a_label_that_begins_another_scores_the_end_of_the_turn(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    # Without the end-of-turn token "good" would always beat "good service" (a prefix of it).
    body = await classify(client, text="great service", labels=["good", "good service"])
    result = body["results"][0]
    assert_distribution(result, ["good", "good service"])
    assert result["label"] == "good service"
    eos = fake_engine.tokenizer.eos_token_id
    assert all(r.prompt_token_ids[-1] == eos for r in scoring(fake_engine))


async def test_scoring_requests_sample_nothing(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await classify(client, text="I love it", labels="sentiment")
    for options in (r.options for r in scoring(fake_engine)):
        assert options.prompt_logprobs == 0
        assert options.max_tokens == 1
        assert options.temperature == 0.0


async def test_a_batch_of_many_texts(client: httpx.AsyncClient, fake_engine: FakeEngine) -> None:
    texts = [["I love it", "I hate it"][i % 2] + f" #{i}" for i in range(40)]
    body = await classify(client, texts=texts, labels="sentiment")
    results = body["results"]
    assert [r["index"] for r in results] == list(range(40))
    assert [r["label"] for r in results] == ["positive", "negative"] * 20
    for r in results:
        assert_distribution(r, PRESETS["sentiment"].labels)
    # One request per (text, label): the preset's priors were computed at start-up.
    assert len(scoring(fake_engine)) == 40 * 3


# --------------------------------------------------------------------------- calibration
async def test_calibration_removes_the_prompts_own_bias() -> None:
    engine = scoring_engine(bias={"positive": 2.0})
    async with serve(create_app(Settings(model=FAKE_MODEL), engine_factory=lambda: engine)) as c:
        body = await classify(c, texts=["It is a phone", "I hate it"], labels="sentiment")
    plain, hate = body["results"]
    # Uncalibrated, "positive" would win with e^2 / (e^2 + 2) = 0.79.
    for p in plain["scores"].values():
        assert p == pytest.approx(1 / 3)
    assert hate["label"] == "negative"


async def test_priors_are_cached_per_prompt(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    first = await classify(client, text="I love it", labels=SENTIMENT)
    assert len(scoring(fake_engine)) == (1 + len(CONTENT_FREE["en"])) * 3
    second = await classify(client, text="I love it", labels=SENTIMENT)
    assert len(scoring(fake_engine)) == (1 + len(CONTENT_FREE["en"])) * 3 + 3
    assert second["results"][0]["scores"] == first["results"][0]["scores"]
    # The request that computed the priors paid for them.
    prior_tokens = first["usage"]["prompt_tokens"] - second["usage"]["prompt_tokens"]
    assert prior_tokens > 0
    # Anything else in the prompt (here an example) needs its own priors.
    await classify(
        client,
        text="I love it",
        labels=SENTIMENT,
        examples=[{"text": "I hate rain", "label": "negative"}],
    )
    assert len(scoring(fake_engine)) == (1 + len(CONTENT_FREE["en"])) * 3 * 2 + 3


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("text", ["I love it", "我 love 它"], ids=["en", "zh"])
@pytest.mark.parametrize("preset", list(PRESETS))
async def test_a_presets_priors_are_ready_before_its_first_call(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    preset: LabelPreset,
    text: str,
    multi_label: bool,
) -> None:
    body = await classify(client, text=text, labels=preset, multi_label=multi_label)
    labels = PRESETS[preset].labels
    assert len(scoring(fake_engine)) == len(labels)  # the text's requests only
    made = sum(len(r.prompt_token_ids) for r in scoring(fake_engine))
    assert body["usage"]["prompt_tokens"] == made


async def test_custom_priors_are_kept_per_model_and_adapter(tmp_path: Path) -> None:
    engine = scoring_engine()
    settings = Settings(model=FAKE_MODEL, lora_modules=[f"tuned={tmp_path}"])
    async with serve(create_app(settings, engine_factory=lambda: engine)) as client:
        for model in (FAKE_MODEL, "tuned", FAKE_MODEL, "tuned"):
            await classify(client, text="I love it", labels=SENTIMENT, model=model)
    # Each model computed its own priors once: 2 x 3 content-free prompts, 4 texts.
    assert len(scoring(engine)) == (2 * len(CONTENT_FREE["en"]) + 4) * len(SENTIMENT)


async def test_examples_become_turns(client: httpx.AsyncClient, fake_engine: FakeEngine) -> None:
    await classify(
        client,
        text="I love it",
        labels=["positive", "negative"],
        examples=[{"text": "I hate rain", "label": "negative"}],
    )
    prompts = [fake_engine.tokenizer.decode(r.prompt_token_ids) for r in scoring(fake_engine)]
    turns = "user: I hate rain assistant: Category: negative user: I love it assistant: Category:"
    assert sum(turns in prompt for prompt in prompts) == 2  # one per label


# --------------------------------------------------------------------------- multi-label
async def test_multi_label_scores_are_independent(client: httpx.AsyncClient) -> None:
    labels = ["billing", "shipping", "sports"]
    body = await classify(client, text="My invoice and my parcel", labels=labels, multi_label=True)
    result = body["results"][0]
    scores = result["scores"]
    assert list(scores) == labels
    assert result["labels"] == ["billing", "shipping"]
    assert scores["billing"] > 0.5
    assert scores["shipping"] > 0.5
    assert scores["sports"] < 0.5
    assert sum(scores.values()) > 1.0  # not a distribution
    assert result["label"] == max(scores, key=scores.__getitem__)


async def test_multi_label_chooses_what_the_text_makes_more_likely(
    client: httpx.AsyncClient,
) -> None:
    body = await classify(
        client,
        texts=["Where is my parcel?", "Nothing to see"],
        labels=["billing", "shipping", "sports"],
        multi_label=True,
    )
    parcel, nothing = body["results"]
    assert parcel["labels"] == ["shipping"]
    assert parcel["label"] == "shipping"
    # No evidence either way: every label sits exactly at its prior, 0.5, which is chosen.
    assert nothing["scores"] == {label: pytest.approx(0.5) for label in nothing["scores"]}
    assert nothing["label"] in nothing["labels"]


# --------------------------------------------------------------------------- validation
DROP = object()  # removes the field from the valid base request


def request_body(**change: Any) -> dict[str, Any]:
    body = {"text": "hello", "labels": ["a", "b"], **change}
    return {k: v for k, v in body.items() if v is not DROP}


INVALID = [
    pytest.param(request_body(labels=["only"]), "labels", id="one-label"),
    pytest.param(request_body(labels=[]), "labels", id="no-labels"),
    pytest.param(request_body(labels=["a", "b", "a"]), "labels.2", id="duplicate-label"),
    pytest.param(request_body(labels=["a", " "]), "labels.1", id="blank-label"),
    pytest.param(request_body(labels=["a", "b" * 201]), "labels.1", id="label-too-long"),
    pytest.param(request_body(labels="emotions"), "labels", id="unknown-preset"),
    pytest.param(
        request_body(examples=[{"text": "x", "label": "a"}, {"text": "y", "label": "maybe"}]),
        "examples.1.label",
        id="example-with-unknown-label",
    ),
    pytest.param(
        request_body(labels="sentiment", examples=[{"text": "x", "label": "happy"}]),
        "examples.0.label",
        id="example-outside-the-preset",
    ),
    pytest.param(
        request_body(label_descriptions={"a": "first", "c": "third"}),
        "label_descriptions",
        id="description-of-unknown-label",
    ),
    pytest.param(request_body(texts=["fine"]), "text", id="text-and-texts"),
    pytest.param(request_body(text=DROP), "text", id="no-text"),
    pytest.param(request_body(text=""), "text", id="empty-text"),
    pytest.param(request_body(text=DROP, texts=[]), "texts", id="empty-batch"),
    pytest.param(request_body(temperature=0), "temperature", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "param"), INVALID)
async def test_invalid_requests(
    client: httpx.AsyncClient, fake_engine: FakeEngine, body: dict[str, Any], param: str
) -> None:
    response = await client.post(CLASSIFY, json=body)
    assert_openai_error(response, 400, param=param)
    assert scoring(fake_engine) == []


async def test_batch_and_size_limits() -> None:
    settings = Settings(model=FAKE_MODEL, max_batch_size=3, max_text_chars=50, max_labels=4)
    async with serve(create_app(settings, engine_factory=scoring_engine)) as client:
        response = await client.post(
            CLASSIFY, json={"texts": ["a", "b", "c", "d"], "labels": "sentiment"}
        )
        assert_openai_error(response, 413, param="texts", code="payload_too_large")
        response = await client.post(
            CLASSIFY, json={"text": "a", "labels": [f"l{i}" for i in range(5)]}
        )
        assert_openai_error(response, 413, param="labels", code="payload_too_large")
        response = await client.post(
            CLASSIFY, json={"texts": ["a", "b" * 51], "labels": "sentiment"}
        )
        assert_openai_error(response, 413, param="texts.1", code="payload_too_large")
        body = await classify(client, texts=["I love it"] * 3, labels="sentiment")
        assert len(body["results"]) == 3


async def test_text_beyond_the_context(client: httpx.AsyncClient) -> None:
    long = " ".join(["word"] * 600)  # the fake's context is 512 tokens
    response = await client.post(CLASSIFY, json={"texts": ["short", long], "labels": "sentiment"})
    assert_openai_error(response, 400, param="texts.1", code="context_length_exceeded")


async def test_engine_failure_is_a_500(client: httpx.AsyncClient, fake_engine: FakeEngine) -> None:
    from service.errors import EngineFailureError

    fake_engine.fail_with = EngineFailureError("boom")
    response = await client.post(CLASSIFY, json={"text": "I love it", "labels": "sentiment"})
    assert_openai_error(response, 500, code="engine_error")
    # Nothing half-computed was cached: the next request computes the priors.
    fake_engine.fail_with = None
    body = await classify(client, text="I love it", labels="sentiment")
    assert body["results"][0]["label"] == "positive"
    assert math.isfinite(body["usage"]["prompt_tokens"])

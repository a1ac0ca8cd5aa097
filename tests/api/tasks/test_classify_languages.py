"""/v1/classify per language: each text is calibrated on content-free inputs of its own language
(detected from its script, or the `language` field), and a batch may mix languages."""

from __future__ import annotations

import httpx
import pytest

from service.engine.fake import FakeEngine
from service.services.tasks.classify.calibration import CONTENT_FREE
from tests.api.helpers import assert_openai_error
from tests.api.tasks.classify_engine import CLASSIFY, classify, scoring_engine


@pytest.fixture
def fake_engine() -> FakeEngine:
    return scoring_engine()


# A custom label set: a preset's priors are computed at start-up, in every language.
SENTIMENT = ["positive", "negative", "neutral"]


def calibrated_on(engine: FakeEngine) -> set[str]:
    """The languages whose content-free inputs reached the engine (as a prior's last turn)
    since the app started."""
    turns = [
        engine.tokenizer.decode(r.prompt_token_ids)
        for r in engine.requests
        if not r.request_id.startswith("warmup")
    ]
    return {
        language
        for language, inputs in CONTENT_FREE.items()
        if any(f"user: {inputs[0]} assistant:" in turn for turn in turns)
    }


async def test_a_chinese_text_is_calibrated_on_chinese_inputs(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    body = await classify(client, text="我 love 这个 手机", labels=SENTIMENT)
    assert body["results"][0]["label"] == "positive"
    assert calibrated_on(fake_engine) == {"zh"}


async def test_an_english_text_is_calibrated_on_english_inputs(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await classify(client, text="I love this phone", labels=SENTIMENT)
    assert calibrated_on(fake_engine) == {"en"}


async def test_a_batch_mixing_languages_keeps_its_order(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    texts = ["I hate it", "我 love 它", "I love it", "我 hate 它"]
    body = await classify(client, texts=texts, labels=SENTIMENT)
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert [r["label"] for r in body["results"]] == ["negative", "positive", "positive", "negative"]
    assert calibrated_on(fake_engine) == {"en", "zh"}


@pytest.mark.parametrize("language", ["zh", "Chinese", "ZH-cn", "中文"])
async def test_the_language_field_overrides_detection(
    client: httpx.AsyncClient, fake_engine: FakeEngine, language: str
) -> None:
    await classify(client, text="I love it", labels=SENTIMENT, language=language)
    assert calibrated_on(fake_engine) == {"zh"}


async def test_other_scripts_are_classified_as_english_is(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    await classify(client, text="Я love это", labels=SENTIMENT)
    assert calibrated_on(fake_engine) == {"en"}


async def test_an_unknown_language_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CLASSIFY, json={"text": "I love it", "labels": "sentiment", "language": "klingon"}
    )
    assert_openai_error(response, 400, param="language")

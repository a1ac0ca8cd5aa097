"""Classify without an engine: label specs, prompts, label tokens, probabilities."""

from __future__ import annotations

import math
from typing import Any

import pytest

from service.engine.fake import FakeTokenizer
from service.errors import InvalidRequestError
from service.schemas.tasks import ClassifyRequest
from service.services.tasks.classify.calibration import calibrate
from service.services.tasks.classify.labels import PRESETS
from service.services.tasks.classify.pipeline import result
from service.services.tasks.classify.prompts import (
    LabelSpec,
    label_ids,
    label_spec,
    messages,
    prompt_ids,
)
from service.services.tasks.classify.scoring import log_softmax, probabilities, sigmoid, softmax


def spec(**fields: Any) -> LabelSpec:
    return label_spec(ClassifyRequest(text="hello", **fields))


# --------------------------------------------------------------------------- label specs
def test_preset_spec() -> None:
    s = spec(labels="customer_intent", label_descriptions={"billing": "money"})
    assert s.labels == PRESETS["customer_intent"].labels
    assert s.preset == "customer_intent"
    assert s.subject == "intent"
    assert s.descriptions[0] == "money"
    assert s.descriptions[3] == "delivery, tracking and addresses"


def test_custom_spec_keeps_the_order() -> None:
    s = spec(
        labels=["b", "a"],
        label_descriptions={"a": "first letter"},
        examples=[{"text": "x", "label": "a"}],
    )
    assert s.labels == ("b", "a")
    assert s.descriptions == (None, "first letter")
    assert s.examples == (("x", "a"),)
    assert s.preset is None
    assert s.subject is None


def test_cache_key_covers_everything_but_the_texts() -> None:
    base = spec(labels=["a", "b"])
    assert spec(labels=["a", "b"]).cache_key == base.cache_key
    assert label_spec(ClassifyRequest(texts=["x", "y"], labels=["a", "b"])).cache_key == (
        base.cache_key
    )
    others = [
        spec(labels=["b", "a"]),
        spec(labels=["a", "b"], label_descriptions={"a": "x"}),
        spec(labels=["a", "b"], examples=[{"text": "t", "label": "a"}]),
        spec(labels=["a", "b"], multi_label=True),
    ]
    assert len({base.cache_key, *(o.cache_key for o in others)}) == 5


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param({"labels": ["a"]}, "labels", id="one"),
        pytest.param({"labels": ["a", "a"]}, "labels.1", id="duplicate"),
        pytest.param({"labels": ["a", ""]}, "labels", id="empty-is-a-schema-error"),
        pytest.param({"labels": ["a", "\t"]}, "labels.1", id="blank"),
        pytest.param(
            {"labels": ["a", "b"], "examples": [{"text": "t", "label": "c"}]},
            "examples.0.label",
            id="example",
        ),
        pytest.param(
            {"labels": ["a", "b"], "label_descriptions": {"c": "?"}},
            "label_descriptions",
            id="description",
        ),
    ],
)
def test_invalid_specs(fields: dict[str, Any], param: str) -> None:
    try:
        request = ClassifyRequest(text="hello", **fields)
    except ValueError:
        assert param == "labels"  # pydantic rejects it before the service sees it
        return
    with pytest.raises(InvalidRequestError) as caught:
        label_spec(request)
    assert caught.value.param == param


# --------------------------------------------------------------------------- prompts
def test_messages_list_labels_descriptions_and_examples() -> None:
    s = spec(
        labels=["spam", "ham"],
        label_descriptions={"spam": "unwanted ads"},
        examples=[{"text": "WIN A PRIZE", "label": "spam"}],
    )
    turns = messages(s, "see you at 5")
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user"]
    system = turns[0]["content"]
    assert "- spam: unwanted ads" in system
    assert "- ham" in system
    assert turns[1]["content"] == "WIN A PRIZE"
    assert turns[2]["content"] == "Category: spam"  # answered as the label is scored
    assert turns[3]["content"] == "see you at 5"


def test_preset_instruction_names_its_subject() -> None:
    system = messages(spec(labels="sentiment"), "x")[0]["content"]
    assert "sentiment" in system


def test_the_prompt_ends_with_the_answers_opening() -> None:
    tokenizer = FakeTokenizer()
    ids = prompt_ids(tokenizer, spec(labels="sentiment"), "I love it")
    opening = "user: I love it assistant: The sentiment of this text is"
    assert tokenizer.decode(ids).endswith(opening)
    custom = tokenizer.decode(prompt_ids(tokenizer, spec(labels=["a", "b"]), "x"))
    assert custom.endswith("assistant: Category:")


def test_multi_label_instruction_allows_several() -> None:
    single = messages(spec(labels=["a", "b"]), "x")[0]["content"]
    multi = messages(spec(labels=["a", "b"], multi_label=True), "x")[0]["content"]
    assert single != multi


@pytest.mark.parametrize(
    ("labels", "ends"),
    [
        pytest.param(["very good", "very bad"], False, id="shared-first-token"),
        pytest.param(["good", "good service"], True, id="one-begins-another"),
        pytest.param(["yes", "no"], False, id="single-tokens"),
    ],
)
def test_label_tokens(labels: list[str], ends: bool) -> None:
    tokenizer = FakeTokenizer()
    ids = label_ids(tokenizer, labels)
    plain = [tokenizer.encode(f" {label}") for label in labels]  # after the answer's opening
    if ends:
        assert ids == [[*p, tokenizer.eos_token_id] for p in plain]
    else:
        assert ids == plain


# --------------------------------------------------------------------------- probabilities
def test_softmax_is_stable_and_sums_to_one() -> None:
    probs = softmax([1000.0, 0.0, -1000.0])
    assert sum(probs) == pytest.approx(1.0)
    assert probs[0] == pytest.approx(1.0)
    assert log_softmax([0.0, 0.0]) == [pytest.approx(-math.log(2))] * 2


def test_sigmoid_is_stable() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0


def test_calibration_subtracts_the_normalised_prior() -> None:
    prior = log_softmax([2.0, 0.0])
    assert calibrate([2.0, 0.0], prior) == [pytest.approx(0.0), pytest.approx(0.0)]
    # Adding a constant to every score changes nothing.
    assert calibrate([7.0, 5.0], prior) == [pytest.approx(0.0), pytest.approx(0.0)]


@pytest.mark.parametrize(
    "multi_label", [pytest.param(False, id="single"), pytest.param(True, id="multi")]
)
def test_result_label_is_the_argmax(multi_label: bool) -> None:
    s = spec(labels=["a", "b", "c"], multi_label=multi_label)
    probs = probabilities([-1.0, 2.0, 0.5], multi_label=multi_label)
    r = result(3, s, probs)
    assert r.index == 3
    assert r.label == "b"
    assert list(r.scores) == ["a", "b", "c"]
    if multi_label:
        assert r.labels == ["b", "c"]
        assert r.scores["a"] == pytest.approx(sigmoid(-1.0))
    else:
        assert r.labels is None
        assert sum(r.scores.values()) == pytest.approx(1.0)

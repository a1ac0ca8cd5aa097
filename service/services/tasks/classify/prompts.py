"""Classify prompts: the label spec a request describes, its checks, and the token ids scored.

The prompt goes through the model's chat template: a system turn that lists the labels (with
their descriptions), one user/assistant pair per few-shot example, the text as the last user
turn, then the assistant turn, opened with words the label naturally follows (labels.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.config import Settings
from service.engine.base import Tokenizer
from service.errors import ContextLengthError, InvalidRequestError
from service.schemas.tasks import ClassifyRequest
from service.services.core.limits import check_count, check_text
from service.services.tasks import languages
from service.services.tasks.classify.labels import CUSTOM_ANSWER, PRESETS
from service.services.tasks.languages import script

# Bump when the prompt wording changes: cached priors belong to one wording.
TEMPLATE_VERSION = 3
MAX_LABEL_CHARS = 200
# Languages with their own calibration inputs, by the script their texts are written in; a text
# in any other script is classified as English is. (Chinese label words and Chinese instructions
# were tried on evals/data/dev/zh and scored lower than the English ones with the default model:
# it reads Chinese text but answers best in English, so both languages score the same words.)
CLASSIFY_LANGUAGES = {"han": "zh"}
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """Everything about a classification except the texts (and so the key of its priors)."""

    labels: tuple[str, ...]
    descriptions: tuple[str | None, ...]  # per label
    examples: tuple[tuple[str, str], ...]  # (text, label)
    subject: str | None  # "sentiment" for presets; None for custom labels
    answer: str  # the assistant turn's opening words, which the label follows
    multi_label: bool
    preset: str | None = None
    language: str = DEFAULT_LANGUAGE  # CLASSIFY_LANGUAGES: the calibration inputs' language

    @property
    def cache_key(self) -> tuple[Any, ...]:
        return (
            TEMPLATE_VERSION,
            self.language,
            self.labels,
            self.descriptions,
            self.examples,
            self.subject,
            self.answer,
            self.multi_label,
        )


def label_spec(request: ClassifyRequest) -> LabelSpec:
    """The request's labels, descriptions and examples, checked against each other."""
    descriptions: dict[str, str] = {}
    subject: str | None = None
    preset: str | None = None
    answer = CUSTOM_ANSWER
    if isinstance(request.labels, str):
        chosen = PRESETS[request.labels]
        labels, subject, preset = chosen.labels, chosen.subject, request.labels
        answer = chosen.answer
        descriptions.update(chosen.descriptions)
    else:
        labels = tuple(request.labels)
        _check_labels(labels)
    for name, description in (request.label_descriptions or {}).items():
        if name not in labels:
            raise InvalidRequestError(
                f"label_descriptions names '{name}', which is not one of the labels.",
                param="label_descriptions",
            )
        descriptions[name] = description
    examples = tuple((e.text, e.label) for e in request.examples or ())
    for i, (_, label) in enumerate(examples):
        if label not in labels:
            raise InvalidRequestError(
                f"Example {i} has the label '{label}', which is not one of the labels.",
                param=f"examples.{i}.label",
            )
    return LabelSpec(
        labels=labels,
        descriptions=tuple(descriptions.get(label) or None for label in labels),
        examples=examples,
        subject=subject,
        answer=answer,
        multi_label=request.multi_label,
        preset=preset,
    )


def requested_language(request: ClassifyRequest) -> str | None:
    """The `language` field as one of CLASSIFY_LANGUAGES' values (None: detect per text)."""
    found = languages.requested_language(request.language)
    if found is None:
        return None
    return CLASSIFY_LANGUAGES.get(found.script, DEFAULT_LANGUAGE)


def language_of(text: str, requested: str | None) -> str:
    """The language a text is classified in: the request's, else its script's."""
    if requested is not None:
        return requested
    found = script(text)
    return CLASSIFY_LANGUAGES.get(found, DEFAULT_LANGUAGE) if found else DEFAULT_LANGUAGE


def check_limits(request: ClassifyRequest, settings: Settings) -> None:
    """The labels within `max_labels`, the examples' texts within `max_text_chars` (413)."""
    if not isinstance(request.labels, str):
        check_count(len(request.labels), settings.max_labels, what="labels", param="labels")
    for i, example in enumerate(request.examples or ()):
        check_text(example.text, settings, param=f"examples.{i}.text")
    for name, description in (request.label_descriptions or {}).items():
        check_text(description, settings, param=f"label_descriptions.{name}")


def _check_labels(labels: Sequence[str]) -> None:
    if len(labels) < 2:
        raise InvalidRequestError(
            f"Give at least 2 labels (or a preset); got {len(labels)}.", param="labels"
        )
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if not label.strip():
            raise InvalidRequestError("A label may not be blank.", param=f"labels.{i}")
        if len(label) > MAX_LABEL_CHARS:
            raise InvalidRequestError(
                f"A label may have at most {MAX_LABEL_CHARS} characters.", param=f"labels.{i}"
            )
        if label in seen:
            raise InvalidRequestError(f"The label '{label}' appears twice.", param=f"labels.{i}")
        seen.add(label)


def messages(spec: LabelSpec, text: str) -> list[dict[str, Any]]:
    """The chat turns before the answer: instruction, examples (answered), the text."""
    turns: list[dict[str, Any]] = [{"role": "system", "content": _instruction(spec)}]
    for example, label in spec.examples:
        turns.append({"role": "user", "content": example})
        turns.append({"role": "assistant", "content": f"{spec.answer} {label}"})
    turns.append({"role": "user", "content": text})
    return turns


def _instruction(spec: LabelSpec) -> str:
    what = f"the {spec.subject} of the user's text" if spec.subject else "the user's text"
    if spec.multi_label:
        head = f"Classify {what}. Any of these labels may apply:"
    else:
        head = f"Classify {what} as one of these labels:"
    lines = [
        f"- {label}: {description}" if description else f"- {label}"
        for label, description in zip(spec.labels, spec.descriptions, strict=True)
    ]
    return "\n".join([head, *lines, "Answer with the label only."])


def prompt_ids(tokenizer: Tokenizer, spec: LabelSpec, text: str) -> list[int]:
    """The whole prompt up to the label: the chat turns, then the answer's opening words."""
    rendered = tokenizer.apply_chat_template(messages(spec, text), add_generation_prompt=True)
    # ChatML-style templates open the turn with a newline; others ("[/INST]") need a space.
    space = "" if rendered[-1:].isspace() else " "
    return tokenizer.encode(f"{rendered}{space}{spec.answer}", add_special_tokens=False)


def label_ids(tokenizer: Tokenizer, labels: Sequence[str]) -> list[list[int]]:
    """Each label's tokens after the answer's opening words; with the end of the turn when one
    label begins another."""
    ids = [tokenizer.encode(f" {label}", add_special_tokens=False) for label in labels]
    end = tokenizer.eos_token_id
    if end is not None and _one_begins_another(ids):
        ids = [[*label, end] for label in ids]
    return ids


def _one_begins_another(ids: Sequence[Sequence[int]]) -> bool:
    return any(
        i != j and len(a) <= len(b) and list(b[: len(a)]) == list(a)
        for i, a in enumerate(ids)
        for j, b in enumerate(ids)
    )


def check_context(
    prompts: Sequence[list[int]], labels: Sequence[list[int]], *, limit: int, params: Sequence[str]
) -> None:
    longest = max(len(label) for label in labels)
    for prompt, param in zip(prompts, params, strict=True):
        # The scoring request needs room for its one generated token too.
        if len(prompt) + longest + 1 > limit:
            raise ContextLengthError(
                f"This model's maximum context length is {limit} tokens; the classification "
                f"prompt for this text has {len(prompt)} tokens and its longest label "
                f"{longest}. Shorten the text, the labels, their descriptions or the examples.",
                param=param,
            )

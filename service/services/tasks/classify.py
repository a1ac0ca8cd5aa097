"""/v1/classify: a label per text, scored from the model's log-probabilities, calibrated.

How a text is classified:

1. The prompt goes through the model's chat template: a system turn that lists the labels (with
   their descriptions), one user/assistant pair per few-shot example, the text as the last user
   turn, then the assistant turn, opened with words the label naturally follows ("The
   sentiment of this text is"; "Category:" for custom labels; see labels.py).
2. Each label is scored as that turn's continuation: one engine request per (text, label), the
   prompt followed by the label's tokens, asking for prompt logprobs; a label's score is the sum of
   its tokens' log-probabilities. Every request of a call runs concurrently, so the engine's
   continuous batching serves them together. Nothing is sampled: the label is always one of the
   labels. When one label's tokens begin another's ("good" and "good service"), every label also
   scores the end of the turn, so the shorter one does not take the longer one's mass.
3. Contextual calibration: the same prompt scored with content-free texts ("N/A", "",
   "[MASK]") gives the prompt's own bias per label. Scores are normalised over the labels
   (log-softmax) and the content-free inputs' mean normalised score is subtracted, so a
   content-free text comes out uniform. These priors are cached per (engine, labels,
   descriptions, examples, template).
4. Single-label: a softmax of the calibrated scores (they sum to 1). Multi-label: each label gets
   sigmoid(calibrated score) = p(label | text) / (p(label | text) + p(label | content-free)),
   independent of the others: a label is chosen (>= 0.5) when the text makes it more likely than
   an empty text does. p(. | text) sums to 1 over the labels and the prior (a geometric mean
   of distributions) to at most 1, so some label is always chosen: `label`, the argmax in both
   modes, is always among `labels`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from service.config import Settings
from service.engine.base import Engine, SamplingOptions, Tokenizer
from service.errors import ContextLengthError, EngineFailureError, InvalidRequestError
from service.metrics import record_classification
from service.schemas.tasks import ClassifyRequest, ClassifyResponse, ClassifyResult
from service.services.generation import EngineJob, PromptResult, run_to_completion
from service.services.sampling import check_count, check_text
from service.services.tasks import common
from service.services.tasks.calibration import Priors, cache_for
from service.services.tasks.labels import CUSTOM_ANSWER, PRESETS

# Bump when the prompt wording changes: cached priors belong to one wording.
TEMPLATE_VERSION = 2
CONTENT_FREE = ("N/A", "", "[MASK]")
MAX_LABEL_CHARS = 200

A = TypeVar("A")
B = TypeVar("B")

# One prompt pass, no sampling: the one generated token is discarded.
SCORE_OPTIONS = SamplingOptions(max_tokens=1, temperature=0.0, prompt_logprobs=0)


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

    @property
    def cache_key(self) -> tuple[Any, ...]:
        return (
            TEMPLATE_VERSION,
            self.labels,
            self.descriptions,
            self.examples,
            self.subject,
            self.answer,
            self.multi_label,
        )


@dataclass(frozen=True, slots=True)
class Scored:
    """Label log-probabilities per prompt, and what the engine processed to get them."""

    logprobs: list[list[float]]
    prompt_tokens: int
    completion_tokens: int


# --------------------------------------------------------------------------- validation
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


# --------------------------------------------------------------------------- prompts
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


# --------------------------------------------------------------------------- scoring
async def label_logprobs(
    engine: Engine,
    prompts: Sequence[list[int]],
    labels: Sequence[list[int]],
    request_id: str,
) -> Scored:
    """log P(label | prompt) for every prompt and label, all in one concurrent batch.

    One prefill per (prompt, label): vLLM computes prompt logprobs over the whole prompt and does
    not read its prefix cache for such requests, so each costs a full prefill (measured in
    evals/README.md, with the step-wise alternative).
    """
    jobs = [EngineJob([*prompt, *label], SCORE_OPTIONS) for prompt in prompts for label in labels]
    results = await run_to_completion(engine, jobs, request_id)
    scores: list[list[float]] = []
    for p, prompt in enumerate(prompts):
        row = results[p * len(labels) : (p + 1) * len(labels)]
        scores.append(
            [
                _continuation(r, len(prompt), len(label))
                for r, label in zip(row, labels, strict=True)
            ]
        )
    return Scored(
        scores,
        prompt_tokens=sum(r.num_prompt_tokens for r in results),
        completion_tokens=sum(len(s.token_ids) for r in results for s in r.sequences),
    )


def _continuation(result: PromptResult, start: int, length: int) -> float:
    entries = (result.prompt_logprobs or [])[start : start + length]
    if len(entries) != length or any(e is None for e in entries):
        raise EngineFailureError("The engine returned no prompt logprobs for a label.")
    return sum(e.logprob for e in entries if e is not None)


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


async def priors(
    engine: Engine, spec: LabelSpec, labels: Sequence[list[int]], request_id: str
) -> Priors:
    """The mean content-free score per label for this prompt (uncached), normalised."""
    prompts = [prompt_ids(engine.tokenizer, spec, text) for text in CONTENT_FREE]
    scored = await label_logprobs(engine, prompts, labels, request_id)
    normalised = [log_softmax(row) for row in scored.logprobs]
    mean = tuple(sum(column) / len(column) for column in zip(*normalised, strict=True))
    return Priors(mean, scored.prompt_tokens, scored.completion_tokens)


# --------------------------------------------------------------------------- probabilities
def log_softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    norm = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - norm for v in values]


def softmax(values: Sequence[float]) -> list[float]:
    return [math.exp(v) for v in log_softmax(values)]


def calibrate(scores: Sequence[float], prior: Sequence[float]) -> list[float]:
    """Normalised label scores minus the prompt's content-free prior."""
    return [s - p for s, p in zip(log_softmax(scores), prior, strict=True)]


def sigmoid(value: float) -> float:
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    e = math.exp(value)
    return e / (1.0 + e)


def probabilities(calibrated: Sequence[float], *, multi_label: bool) -> list[float]:
    return [sigmoid(v) for v in calibrated] if multi_label else softmax(calibrated)


def result(index: int, spec: LabelSpec, probs: Sequence[float]) -> ClassifyResult:
    best = max(range(len(probs)), key=probs.__getitem__)
    chosen = None
    if spec.multi_label:
        chosen = [label for label, p in zip(spec.labels, probs, strict=True) if p >= 0.5]
    return ClassifyResult(
        index=index,
        label=spec.labels[best],
        labels=chosen,
        scores=dict(zip(spec.labels, probs, strict=True)),
    )


# --------------------------------------------------------------------------- the task
@dataclass(frozen=True, slots=True)
class PreparedClassify:
    id: str
    model: str
    spec: LabelSpec
    labels: list[list[int]]  # token ids per label
    prompts: list[list[int]]  # token ids per text


def prepare(
    request: ClassifyRequest, engine: Engine, settings: Settings, *, request_id: str
) -> PreparedClassify:
    """Validate and tokenize (no engine work): every 4xx is raised here."""
    model = common.served_model(request.model, settings)
    param = "text" if request.text is not None else "texts"
    texts = common.inputs(request.text, request.texts, param=param, settings=settings)
    check_limits(request, settings)
    spec = label_spec(request)
    tokenizer = engine.tokenizer
    labels = label_ids(tokenizer, spec.labels)
    prompts = [prompt_ids(tokenizer, spec, text) for text in texts]
    params = [param] if request.text is not None else [f"texts.{i}" for i in range(len(texts))]
    check_context(prompts, labels, limit=engine.max_model_len, params=params)
    return PreparedClassify(request_id, model, spec, labels, prompts)


async def classify(prepared: PreparedClassify, engine: Engine) -> ClassifyResponse:
    request_id, spec, labels = prepared.id, prepared.spec, prepared.labels

    async def compute_priors() -> Priors:
        return await priors(engine, spec, labels, f"{request_id}-prior")

    # The texts and (on a cache miss) the priors are scored in the same engine batch.
    cache = cache_for(engine)
    scored, (prior, fresh) = await _gather(
        label_logprobs(engine, prepared.prompts, labels, request_id),
        cache.get(spec.cache_key, compute_priors),
    )
    results = []
    for i, row in enumerate(scored.logprobs):
        calibrated = calibrate(row, prior.logprobs)
        results.append(result(i, spec, probabilities(calibrated, multi_label=spec.multi_label)))
        record_classification(results[-1].label, preset=spec.preset)
    prompt_tokens = scored.prompt_tokens + (prior.prompt_tokens if fresh else 0)
    completion_tokens = scored.completion_tokens + (prior.completion_tokens if fresh else 0)
    return common.envelope(
        "classify",
        id=request_id,
        model=prepared.model,
        results=results,
        usage=common.usage(prompt_tokens, completion_tokens),
    )


async def _gather(first: Coroutine[Any, Any, A], second: Coroutine[Any, Any, B]) -> tuple[A, B]:
    """Both results; one failure cancels the other and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            a, b = group.create_task(first), group.create_task(second)
    except BaseExceptionGroup as grouped:
        raise grouped.exceptions[0] from None
    return a.result(), b.result()

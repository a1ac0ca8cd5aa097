"""The classify task: prepare (validate, tokenize) and run (score, calibrate, choose)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine
from service.schemas.common import Usage
from service.schemas.tasks import ClassifyRequest, ClassifyResponse, ClassifyResult
from service.services.core import costs
from service.services.core.generation import Dispatch, first_failure_cancels
from service.services.tasks import common
from service.services.tasks.classify.calibration import (
    Priors,
    cache_for,
    calibrate,
    prior_key,
    priors,
)
from service.services.tasks.classify.prompts import (
    LabelSpec,
    check_context,
    check_limits,
    label_ids,
    label_spec,
    language_of,
    prompt_ids,
    requested_language,
)
from service.services.tasks.classify.scoring import (
    label_logprobs,
    probabilities,
    scoring_method,
)
from service.telemetry.metrics import record_classification


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


@dataclass(frozen=True, slots=True)
class LanguageGroup:
    """The texts of one language: their spec (its wording and priors) and where they go."""

    spec: LabelSpec
    indices: list[int]  # positions in the request's texts
    prompts: list[list[int]]  # token ids per text


@dataclass(frozen=True, slots=True)
class PreparedClassify:
    id: str
    model: str
    labels: list[list[int]]  # token ids per label
    groups: list[LanguageGroup]
    dispatch: Dispatch
    scoring: str = "auto"  # the `classify_scoring` setting

    @property
    def priority(self) -> int:
        return self.dispatch.priority

    @property
    def prompts(self) -> list[list[int]]:
        """Token ids per text, in the request's order."""
        ordered: dict[int, list[int]] = {}
        for group in self.groups:
            ordered.update(zip(group.indices, group.prompts, strict=True))
        return [ordered[i] for i in range(len(ordered))]

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        texts = sum(len(group.indices) for group in self.groups)
        return costs.of_classify(texts, len(self.labels))


def prepare(
    request: ClassifyRequest,
    engine: Engine,
    settings: Settings,
    caller: Caller,
    *,
    request_id: str,
) -> PreparedClassify:
    """Validate and tokenize (no engine work): every 4xx is raised here."""
    model = common.served_model(request.model, settings, engine)
    param = "text" if request.text is not None else "texts"
    texts = common.inputs(request.text, request.texts, param=param, settings=settings)
    check_limits(request, settings)
    spec = label_spec(request)
    requested = requested_language(request)
    tokenizer = engine.tokenizer
    labels = label_ids(tokenizer, spec.labels)
    by_language: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        by_language.setdefault(language_of(text, requested), []).append(i)
    groups = []
    for language, indices in by_language.items():
        group_spec = replace(spec, language=language)
        prompts = [prompt_ids(tokenizer, group_spec, texts[i]) for i in indices]
        params = [param] if request.text is not None else [f"texts.{i}" for i in indices]
        check_context(prompts, labels, limit=engine.max_model_len, params=params)
        groups.append(LanguageGroup(group_spec, indices, prompts))
    dispatch = Dispatch.of(caller, model.adapter)
    return PreparedClassify(
        request_id, model.name, labels, groups, dispatch, settings.classify_scoring
    )


async def classify(prepared: PreparedClassify, engine: Engine) -> ClassifyResponse:
    request_id, labels, dispatch = prepared.id, prepared.labels, prepared.dispatch
    cache = cache_for(engine)
    tasks = []
    # Every group's texts and (on a cache miss) priors are scored in the same engine batch.
    async with (
        scoring_method(engine, prepared.scoring) as method,
        first_failure_cancels() as group_tasks,
    ):
        for k, group in enumerate(prepared.groups):
            ids = f"{request_id}-{group.spec.language}" if k else request_id

            async def compute_priors(spec: LabelSpec = group.spec, ids: str = ids) -> Priors:
                return await priors(
                    engine, spec, labels, f"{ids}-prior", dispatch=dispatch, method=method
                )

            scoring = group_tasks.create_task(
                label_logprobs(engine, group.prompts, labels, ids, dispatch=dispatch, method=method)
            )
            key = prior_key(prepared.model, group.spec)
            cached = group_tasks.create_task(cache.get(key, compute_priors))
            tasks.append((group, scoring, cached))
    results: dict[int, ClassifyResult] = {}
    prompt_tokens = completion_tokens = 0
    for group, scoring, cached in tasks:
        scored, (prior, fresh) = scoring.result(), cached.result()
        for i, row in zip(group.indices, scored.logprobs, strict=True):
            calibrated = calibrate(row, prior.logprobs)
            results[i] = result(
                i, group.spec, probabilities(calibrated, multi_label=group.spec.multi_label)
            )
            record_classification(results[i].label, preset=group.spec.preset)
        prompt_tokens += scored.prompt_tokens + (prior.prompt_tokens if fresh else 0)
        completion_tokens += scored.completion_tokens + (prior.completion_tokens if fresh else 0)
    return common.envelope(
        "classify",
        id=request_id,
        model=prepared.model,
        results=[results[i] for i in range(len(results))],
        usage=Usage.of(prompt_tokens, completion_tokens),
    )

"""The classify task: prepare (validate, tokenize) and run (score, calibrate, choose)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.config import Settings
from service.engine.base import Engine
from service.schemas.common import Usage
from service.schemas.tasks import ClassifyRequest, ClassifyResponse, ClassifyResult
from service.services import costs
from service.services.generation import first_failure_cancels
from service.services.tasks import common
from service.services.tasks.classify.calibration import Priors, cache_for, calibrate, priors
from service.services.tasks.classify.prompts import (
    LabelSpec,
    check_context,
    check_limits,
    label_ids,
    label_spec,
    prompt_ids,
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
class PreparedClassify:
    id: str
    model: str
    spec: LabelSpec
    labels: list[list[int]]  # token ids per label
    prompts: list[list[int]]  # token ids per text
    scoring: str = "auto"  # the `classify_scoring` setting

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        return costs.of_classify(len(self.prompts), len(self.labels))


def prepare(
    request: ClassifyRequest, engine: Engine, settings: Settings, *, request_id: str
) -> PreparedClassify:
    """Validate and tokenize (no engine work): every 4xx is raised here."""
    model = common.served_model(request.model, settings, engine)
    param = "text" if request.text is not None else "texts"
    texts = common.inputs(request.text, request.texts, param=param, settings=settings)
    check_limits(request, settings)
    spec = label_spec(request)
    tokenizer = engine.tokenizer
    labels = label_ids(tokenizer, spec.labels)
    prompts = [prompt_ids(tokenizer, spec, text) for text in texts]
    params = [param] if request.text is not None else [f"texts.{i}" for i in range(len(texts))]
    check_context(prompts, labels, limit=engine.max_model_len, params=params)
    return PreparedClassify(request_id, model, spec, labels, prompts, settings.classify_scoring)


async def classify(prepared: PreparedClassify, engine: Engine) -> ClassifyResponse:
    request_id, spec, labels = prepared.id, prepared.spec, prepared.labels

    # The texts and (on a cache miss) the priors are scored in the same engine batch.
    cache = cache_for(engine)
    async with scoring_method(engine, prepared.scoring) as method:

        async def compute_priors() -> Priors:
            return await priors(engine, spec, labels, f"{request_id}-prior", method=method)

        async with first_failure_cancels() as group:
            scoring = group.create_task(
                label_logprobs(engine, prepared.prompts, labels, request_id, method=method)
            )
            cached = group.create_task(cache.get(spec.cache_key, compute_priors))
    scored, (prior, fresh) = scoring.result(), cached.result()
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
        usage=Usage.of(prompt_tokens, completion_tokens),
    )

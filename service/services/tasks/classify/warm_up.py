"""The presets' priors, computed while the engine warms up: no call to a preset pays for one.

Every preset in every calibration language, single- and multi-label, scored in one engine batch
before the gateway reports ready, and pinned in the engine's prior cache (calibration.py) under
the base model's name. Adapters and custom label sets get theirs on first use. A preset whose
prompt does not fit the model's context is left to fail as its requests will (a 400); an engine
that gives no label logprobs leaves them all to their first use, with a warning.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from service.config import Settings
from service.engine.base import Engine
from service.errors import ContextLengthError, EngineFailureError
from service.schemas.tasks import ClassifyRequest
from service.services.core.generation import Dispatch, gather_or_cancel
from service.services.tasks.classify.calibration import (
    CONTENT_FREE,
    cache_for,
    prior_key,
    priors,
)
from service.services.tasks.classify.labels import PRESETS
from service.services.tasks.classify.prompts import (
    LabelSpec,
    check_context,
    label_ids,
    label_spec,
    prompt_ids,
)
from service.services.tasks.classify.scoring import Method, scoring_method

logger = logging.getLogger(__name__)


def preset_specs() -> list[LabelSpec]:
    """Every preset, in every calibration language, single- and multi-label."""
    return [
        replace(
            label_spec(ClassifyRequest(text="-", labels=name, multi_label=multi)), language=lang
        )
        for name in PRESETS
        for multi in (False, True)
        for lang in CONTENT_FREE
    ]


def _fits(engine: Engine, spec: LabelSpec, labels: list[list[int]]) -> bool:
    prompts = [prompt_ids(engine.tokenizer, spec, text) for text in CONTENT_FREE[spec.language]]
    try:
        check_context(prompts, labels, limit=engine.max_model_len, params=["labels"] * len(prompts))
    except ContextLengthError:
        return False
    return True


async def warm_up_priors(engine: Engine, settings: Settings) -> None:
    """Compute and pin the presets' priors for the base model."""
    began = time.perf_counter()
    cache = cache_for(engine)
    specs = [s for s in preset_specs() if _fits(engine, s, label_ids(engine.tokenizer, s.labels))]

    async def pin(spec: LabelSpec, request_id: str, method: Method) -> None:
        labels = label_ids(engine.tokenizer, spec.labels)
        found = await priors(engine, spec, labels, request_id, dispatch=Dispatch(), method=method)
        cache.pin(prior_key(settings.model_name, spec), found)

    try:
        async with scoring_method(engine, settings.classify_scoring) as method:
            await gather_or_cancel(
                [pin(spec, f"warmup-prior-{i}", method) for i, spec in enumerate(specs)]
            )
    except EngineFailureError as err:
        # An engine that gives no label logprobs (a test's or a load test's scripted one)
        # still serves: a preset then computes its priors on first use, as a custom set does.
        logger.warning("classify priors not computed at start-up: %s", err)
        return
    seconds = round(time.perf_counter() - began, 2)
    logger.info(
        "classify priors ready", extra={"fields": {"priors": len(specs), "seconds": seconds}}
    )

"""Label priors for contextual calibration, cached per engine and prompt.

A prior is what the model says about the labels when the text carries no content ("N/A", "",
"[MASK]"): its bias towards some labels under one prompt. It depends on the model (or adapter)
and on everything in the prompt except the text, so it is computed once per (engine, model or
adapter, prompt key) and kept in a small LRU; the presets' priors are computed at start-up
(warm_up.py) and pinned.

The caches hang off the engine through a `WeakKeyDictionary`: the route's signature carries
only the engine, an engine is one model, two apps in one process (tests) never share priors, and
a cache goes away with its engine. Concurrent requests that need the same missing prior share
one computation instead of each running it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass

from service.engine.base import Engine
from service.services.core.generation import Dispatch
from service.services.tasks.classify.prompts import LabelSpec, prompt_ids
from service.services.tasks.classify.scoring import Method, label_logprobs, log_softmax

# Per language (prompts.CLASSIFY_LANGUAGES): Chinese texts are calibrated on a Chinese "none"
# (chosen on evals/data/dev/zh: accuracy 0.50 / 0.60 / 0.65 against 0.47 / 0.55 / 0.55 with the
# English inputs, sentiment / news topic / customer intent).
CONTENT_FREE: dict[str, tuple[str, ...]] = {"en": ("N/A", "", "[MASK]"), "zh": ("无", "", "[MASK]")}
CACHE_SIZE = 256  # prompt keys per engine; one entry is a few floats


@dataclass(frozen=True, slots=True)
class Priors:
    # Per label, in the labels' order: the mean over content-free texts of the label's
    # log-probability normalised over the labels.
    logprobs: tuple[float, ...]
    prompt_tokens: int  # engine work spent computing them (for the usage of that request)
    completion_tokens: int


class PriorCache:
    """A bounded LRU of priors with single-flight computation, beside pinned priors that are
    never evicted (the presets', computed at start-up); used on one event loop."""

    def __init__(self, maxsize: int = CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self._values: OrderedDict[Hashable, Priors] = OrderedDict()
        self._pinned: dict[Hashable, Priors] = {}
        self._pending: dict[Hashable, asyncio.Future[Priors]] = {}

    def __len__(self) -> int:
        return len(self._values) + len(self._pinned)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values or key in self._pinned

    def peek(self, key: Hashable) -> Priors | None:
        """The cached priors for `key`, if any (without computing or refreshing them)."""
        return self._pinned.get(key) or self._values.get(key)

    def pin(self, key: Hashable, priors: Priors) -> None:
        """Keep `priors` for `key` for good, outside the LRU."""
        self._values.pop(key, None)
        self._pinned[key] = priors

    async def get(
        self, key: Hashable, compute: Callable[[], Awaitable[Priors]]
    ) -> tuple[Priors, bool]:
        """The priors for `key` and whether this call computed them (and so pays for them)."""
        while True:
            if key in self._pinned:
                return self._pinned[key], False
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key], False
            pending = self._pending.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending), False
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # The request computing it went away: compute it here instead.

        future: asyncio.Future[Priors] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            priors = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # waiters re-raise it; nobody else needs to retrieve it
            raise
        finally:
            del self._pending[key]
        future.set_result(priors)
        self._values[key] = priors
        while len(self._values) > self.maxsize:
            self._values.popitem(last=False)
        return priors, True


_caches: weakref.WeakKeyDictionary[object, PriorCache] = weakref.WeakKeyDictionary()


def cache_for(engine: object) -> PriorCache:
    """The prior cache of this engine (created on first use)."""
    cache = _caches.get(engine)
    if cache is None:
        cache = _caches[engine] = PriorCache()
    return cache


def prior_key(model: str, spec: LabelSpec) -> tuple[Hashable, ...]:
    """A prior's cache key: the model or adapter (by its served name) and the prompt's key."""
    return (model, *spec.cache_key)


def forget_priors(engine: Engine) -> None:
    """Drop this engine's cached priors (cost measurements of the cold case)."""
    _caches.pop(engine, None)


async def priors(
    engine: Engine,
    spec: LabelSpec,
    labels: Sequence[list[int]],
    request_id: str,
    *,
    dispatch: Dispatch,
    method: Method = "prefill",
) -> Priors:
    """The mean content-free score per label for this prompt (uncached), normalised."""
    prompts = [prompt_ids(engine.tokenizer, spec, text) for text in CONTENT_FREE[spec.language]]
    scored = await label_logprobs(
        engine, prompts, labels, request_id, dispatch=dispatch, method=method
    )
    normalised = [log_softmax(row) for row in scored.logprobs]
    mean = tuple(sum(column) / len(column) for column in zip(*normalised, strict=True))
    return Priors(mean, scored.prompt_tokens, scored.completion_tokens)


def calibrate(scores: Sequence[float], prior: Sequence[float]) -> list[float]:
    """Normalised label scores minus the prompt's content-free prior."""
    return [s - p for s, p in zip(log_softmax(scores), prior, strict=True)]

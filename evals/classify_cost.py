"""What one label costs, scored three ways (`python -m evals classify --cost`).

  prefill   what the service does: one request per (text, label), the prompt plus the label's
            tokens with prompt logprobs. vLLM skips prefix-cache reads for requests that ask for
            prompt logprobs, so each is a full prefill of prompt + label.
  stepwise  next-token logprobs along the labels' token trie: per edge (a label prefix and its next
            token) one request of prompt + prefix that generates one token forced by
            logit_bias +100; vLLM reports the raw logprob (before the bias), which is the one
            wanted. These requests read the prefix cache, once a first request per text has filled
            it; vLLM caches whole blocks only (128 tokens on CPU).

  tokens    the default (`classify_scoring=auto` on an idle engine): one request per label-trie
            node asking for the logprobs of the node's next tokens (`logprob_token_ids`), a
            forced second token covering a child node; single-token labels cost one 1-token
            request per text.

All give the same numbers; the script checks that and prints the time per (text, label).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine, SamplingOptions
from service.schemas.tasks import ClassifyRequest, LabelledExample
from service.services.core.generation import Dispatch, run_to_completion
from service.services.tasks.classify import calibration, pipeline, scoring, warm_up_priors
from service.services.tasks.classify import prompts as classify_prompts

TEXTS = (
    "I was charged twice for my subscription this month.",
    "The app crashes every time I try to log in.",
    "I want to cancel my subscription.",
    "Where is my package? It was supposed to arrive yesterday.",
    "What are your opening hours?",
    "Can you send me a copy of my last invoice?",
    "I can't connect my printer to the wifi.",
    "How long does delivery take to Germany?",
    "Do you have a store in Chicago?",
    "Please close my account, I no longer need it.",
    "The website shows an error 500 when I upload a file.",
    "Why is my bill higher than usual?",
    "Can I change the delivery address for my order?",
    "Are you hiring for summer jobs?",
    "Stop my plan at the end of this month, please.",
    "My password reset email never arrives.",
)
EXAMPLES = (
    ("My card was charged but I got no receipt.", "billing"),
    ("The app freezes on start-up since yesterday's update.", "technical support"),
    ("Please end my membership at the end of the month.", "cancellation"),
    ("My order has not arrived and the tracking page shows nothing.", "shipping"),
    ("Do you sell gift cards in your shops?", "general inquiry"),
    ("I need a refund for the duplicate payment on my statement.", "billing"),
    ("I cannot log in; the page keeps reloading.", "technical support"),
    ("Which courier do you use for parcels to France?", "shipping"),
)


async def measure(engine: Engine) -> None:
    print("cost per label: prefill, stepwise and tokens (the same texts, fresh each round)")
    print(_row("prompt", "tokens", "method", "requests", "seconds", "ms/label"))
    for name, examples in (("no examples", ()), ("8 few-shot examples", EXAMPLES)):
        for rnd in range(2):
            nonce = uuid.uuid4().hex[:6]  # new texts each round: no cached text prompts
            request = ClassifyRequest(
                texts=[f"{t} [{nonce}]" for t in TEXTS],
                labels="customer_intent",
                examples=[LabelledExample(text=t, label=label) for t, label in examples],
            )
            spec = classify_prompts.label_spec(request)
            tok = engine.tokenizer
            prompts = [classify_prompts.prompt_ids(tok, spec, t) for t in request.texts or []]
            labels = classify_prompts.label_ids(tok, spec.labels)
            pairs = len(prompts) * len(labels)
            tokens = sum(map(len, prompts)) // len(prompts)
            block = engine.kv_block_size
            shared = block is not None and min(map(len, prompts)) >= block
            found: dict[str, list[list[float]]] = {}
            for method in ("prefill", "stepwise", "tokens"):
                requests = (
                    len(prompts)
                    * {
                        "prefill": len(labels),
                        "stepwise": _edges(labels),
                        "tokens": len(scoring.plan_requests(labels, shared=shared)),
                    }[method]
                )
                began = time.perf_counter()
                async with engine.token_scoring() as available:
                    if method == "tokens" and not available:
                        raise RuntimeError("this engine gives no token-id logprobs")
                    scored = await scoring.label_logprobs(
                        engine,
                        prompts,
                        labels,
                        f"cost-{method}-{nonce}",
                        dispatch=Dispatch(),
                        method=method,
                    )
                seconds = time.perf_counter() - began
                found[method] = scored.logprobs
                ms = f"{1e3 * seconds / pairs:.0f}"
                print(_row(name, tokens, method, requests, f"{seconds:.2f}", ms), flush=True)
            gap = max(
                abs(a - b)
                for other in ("stepwise", "tokens")
                for ra, rb in zip(found["prefill"], found[other], strict=True)
                for a, b in zip(ra, rb, strict=True)
            )
            print(f"{'':<22} round {rnd + 1}: largest difference from prefill {gap:.2e}")


def _edges(labels: Sequence[list[int]]) -> int:
    return len({(tuple(label[:j]), label[j]) for label in labels for j in range(len(label))})


INTENTS = (
    "billing",
    "shipping",
    "technical support",
    "cancellation",
    "general inquiry",
    "refund",
    "complaint",
    "praise",
    "sales",
    "account access",
    "security",
    "returns",
    "warranty",
    "feedback",
    "pricing",
    "careers",
)
# One token each (SmolLM2's tokenizer, after a space): the case token scoring serves in one request.
SINGLE_TOKEN = (
    "billing",
    "shipping",
    "cancellation",
    "refund",
    "complaint",
    "praise",
    "sales",
    "security",
    "returns",
    "warranty",
    "feedback",
    "pricing",
    "careers",
    "delivery",
    "payment",
    "privacy",
)
LABEL_SETS = {"mixed": INTENTS, "single-token": SINGLE_TOKEN}
RUNS = 20


async def _median_seconds(
    runs: int, first: Callable[[int], Awaitable[object]], second: Callable[[int], Awaitable[object]]
) -> tuple[float, float]:
    """The median seconds of each of two calls, run in turn (on a shared machine, the load
    then weighs on both alike)."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(runs):
        for call, found in zip((first, second), times, strict=True):
            began = time.perf_counter()
            await call(i)
            found.append(time.perf_counter() - began)
    return statistics.median(times[0]), statistics.median(times[1])


async def measure_warm_up(engine: Engine, settings: Settings) -> None:
    """What computing the presets' priors adds to start-up (the engine's own warm-up aside)."""
    calibration.forget_priors(engine)
    began = time.perf_counter()
    await warm_up_priors(engine, settings)
    seconds = time.perf_counter() - began
    count = len(calibration.cache_for(engine))
    print(f"presets' priors at start-up: {count} priors in {seconds:.2f} s")


async def measure_against_completion(
    engine: Engine, settings: Settings, methods: Sequence[str] = ("auto",)
) -> None:
    """/v1/classify's service call with N labels against a max_tokens=1 completion of the same
    rendered prompt, concurrency 1, median of 20 run in turn with the completions; every run a
    fresh text (no cached text, only the shared instruction's KV blocks, for both).
    cached-prior: the label set's content-free prior is cached (the usual case); cold: it is
    computed in the same call. `auto` is token scoring on an idle engine."""
    print(f"classify with N labels / a max_tokens=1 completion, median of {RUNS} (ms)")
    print(
        f"{'labels':<13} {'N':>3} {'method':<9} {'prior':<13} {'classify':>9} {'complete':>9} "
        f"{'ratio':>6}"
    )
    for kind, names in LABEL_SETS.items():
        for n in (2, 3, 8, 16):
            for method in methods:
                for case in ("cached-prior", "cold"):
                    update = {"classify_scoring": method}
                    run = _CostCase(engine, settings.model_copy(update=update))
                    run.labels, run.cold = list(names[:n]), case == "cold"
                    if not run.cold:
                        await run.classify(RUNS)  # fills the prior cache
                    classify_s, complete_s = await _median_seconds(RUNS, run.classify, run.complete)
                    print(
                        f"{kind:<13} {n:>3} {method:<9} {case:<13} {1e3 * classify_s:>9.0f} "
                        f"{1e3 * complete_s:>9.0f} {classify_s / complete_s:>6.2f}",
                        flush=True,
                    )


class _CostCase:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.labels: list[str] = []
        self.cold = False
        self.nonce = uuid.uuid4().hex[:6]

    def _prepare(self, i: int) -> pipeline.PreparedClassify:
        text = f"{TEXTS[i % len(TEXTS)]} [{self.nonce}-{i}]"
        request = ClassifyRequest(text=text, labels=self.labels)
        return pipeline.prepare(
            request, self.engine, self.settings, Caller(), request_id=f"cost-{i}"
        )

    async def classify(self, i: int) -> object:
        if self.cold:
            calibration.forget_priors(self.engine)
        return await pipeline.classify(self._prepare(i), self.engine)

    async def complete(self, i: int) -> object:
        prompt = self._prepare(i + 1000).prompts[0]
        one_token = SamplingOptions(max_tokens=1, temperature=0.0)
        return await run_to_completion(
            self.engine, [Dispatch().request(prompt, one_token)], f"c-{i}"
        )


def _row(*cells: object) -> str:
    name, tokens, method, requests, seconds, ms = (str(c) for c in cells)
    return f"{name:<22} {tokens:>6} {method:<10} {requests:>8} {seconds:>8} {ms:>9}"

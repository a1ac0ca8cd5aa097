"""What one label costs, scored two ways (`python -m evals classify --cost`).

  prefill   what the service does: one request per (text, label), the prompt plus the label's
            tokens with prompt logprobs. vLLM skips prefix-cache reads for requests that ask for
            prompt logprobs, so each is a full prefill of prompt + label.
  stepwise  next-token logprobs along the labels' token trie: per edge (a label prefix and its next
            token) one request of prompt + prefix that generates one token forced by
            logit_bias +100; vLLM reports the raw logprob (before the bias), which is the one
            wanted. These requests read the prefix cache, once a first request per text has filled
            it; vLLM caches whole blocks only (128 tokens on CPU).

Both give the same numbers; the script checks that and prints the time per (text, label).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from service.engine.base import Engine, SamplingOptions
from service.schemas.tasks import ClassifyRequest, LabelledExample
from service.services.generation import EngineJob, run_to_completion
from service.services.tasks.classify import prompts as classify_prompts
from service.services.tasks.classify import scoring

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


async def stepwise(
    engine: Engine, prompts: Sequence[list[int]], labels: Sequence[list[int]], request_id: str
) -> tuple[list[list[float]], int]:
    """Label log-probabilities from forced next tokens; also the number of engine requests."""
    edges = sorted({(tuple(label[:j]), label[j]) for label in labels for j in range(len(label))})

    def job(prompt: list[int], edge: tuple[tuple[int, ...], int]) -> EngineJob:
        prefix, token = edge
        options = SamplingOptions(
            max_tokens=1, temperature=0.0, logprobs=0, logit_bias={token: 100.0}
        )
        return EngineJob([*prompt, *prefix], options)

    # First one edge per text, which leaves the text's prompt in the prefix cache; then the rest.
    first = await run_to_completion(engine, [job(p, edges[0]) for p in prompts], f"{request_id}-a")
    rest = await run_to_completion(
        engine, [job(p, e) for p in prompts for e in edges[1:]], f"{request_id}-b"
    )
    per_edge = len(edges) - 1
    scores = []
    for i, _ in enumerate(prompts):
        results = [first[i], *rest[i * per_edge : (i + 1) * per_edge]]
        value = {e: r.sequences[0].logprobs[0].logprob for e, r in zip(edges, results, strict=True)}
        scores.append(
            [sum(value[(tuple(lab[:j]), lab[j])] for j in range(len(lab))) for lab in labels]
        )
    return scores, len(first) + len(rest)


async def measure(engine: Engine) -> None:
    print("cost per label: prefill (prompt logprobs) vs stepwise (forced next tokens)")
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
            began = time.perf_counter()
            full = await scoring.label_logprobs(engine, prompts, labels, f"cost-p-{nonce}")
            seconds = time.perf_counter() - began
            row = f"{name:<22} {tokens:>6}"
            print(
                f"{row} {'prefill':<10} {pairs:>8} {seconds:>8.2f} {1000 * seconds / pairs:>9.0f}"
            )
            began = time.perf_counter()
            steps, requests = await stepwise(engine, prompts, labels, f"cost-s-{nonce}")
            seconds = time.perf_counter() - began
            ms = f"{1e3 * seconds / pairs:.0f}"
            print(_row(name, tokens, "stepwise", requests, f"{seconds:.2f}", ms))
            gap = max(
                abs(a - b)
                for ra, rb in zip(full.logprobs, steps, strict=True)
                for a, b in zip(ra, rb, strict=True)
            )
            print(f"{'':<22} round {rnd + 1}: largest difference between the methods {gap:.2e}")


def _row(*cells: object) -> str:
    name, tokens, method, requests, seconds, ms = (str(c) for c in cells)
    return f"{name:<22} {tokens:>6} {method:<10} {requests:>8} {seconds:>8} {ms:>9}"

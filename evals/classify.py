"""Classify accuracy on the labelled sets in evals/data/, against simpler ways to do the same.

    python -m evals classify                      # in process: the real engine, test profile
    python -m evals classify --base-url URL       # a running gateway, over HTTP
    python -m evals classify --cost               # also time the two ways of scoring labels

Methods compared (columns of the table):

  raw      the service's instruction, text and answer opening as plain text (no chat template),
           each label scored by its log-likelihood, no calibration
  chat     the service's chat-template prompt, scores not calibrated
  service  /v1/classify itself: chat template + contextual calibration
  choice   what one would hand-roll on a bare vLLM: the same chat turns (without the answer's
           opening words), greedy decoding under a `structured_outputs: {choice: labels}`
           constraint (the label is sampled text)

Over HTTP only `service` and `choice` can be measured (the others need the engine itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from service.caller import Caller
from service.config import TEST_PROFILE, Settings
from service.engine.base import Engine, SamplingOptions, StructuredOutput
from service.schemas.tasks import ClassifyRequest, LabelPreset
from service.services.core.generation import Dispatch, run_to_completion
from service.services.tasks import classify as service
from service.services.tasks.classify import prompts as classify_prompts
from service.services.tasks.classify import scoring
from service.services.tasks.classify.calibration import cache_for, prior_key

DATA = Path(__file__).parent / "data"
METHODS: tuple[str, ...] = ("raw", "chat", "service", "choice")
BATCH = 64  # texts per /v1/classify request (the default max_batch_size)


@dataclass(frozen=True)
class EvalSet:
    name: str
    file: str  # under data/ (held out) or data/dev/
    labels: LabelPreset | tuple[str, ...]
    keep: frozenset[str] | None = None  # only items with these gold labels
    language: str = "en"

    def items(self, folder: Path = DATA, *, limit: int | None = None) -> list[tuple[str, str]]:
        """The labelled texts; `limit`: about that many, spread over the file (some files are
        grouped by label)."""
        rows = [json.loads(line) for line in (folder / self.file).read_text().splitlines() if line]
        items = [
            (r["text"], r["label"]) for r in rows if self.keep is None or r["label"] in self.keep
        ]
        if limit is not None and len(items) > limit:
            items = items[:: math.ceil(len(items) / limit)]
        return items

    def request(self, texts: Sequence[str]) -> ClassifyRequest:
        labels: Any = self.labels if isinstance(self.labels, str) else list(self.labels)
        # The language is given (not detected) so that the eval's own prior lookup finds it.
        return ClassifyRequest(texts=list(texts), labels=labels, language=self.language)


def _sets(language: str, folder: str) -> tuple[EvalSet, ...]:
    suffix = "" if language == "en" else f"_{language}"
    return (
        EvalSet(f"sentiment{suffix}", f"{folder}sentiment.jsonl", "sentiment", language=language),
        EvalSet(
            f"sentiment_pos_neg{suffix}",
            f"{folder}sentiment.jsonl",
            ("positive", "negative"),
            keep=frozenset({"positive", "negative"}),
            language=language,
        ),
        EvalSet(
            f"news_topic{suffix}", f"{folder}news_topic.jsonl", "news_topic", language=language
        ),
        EvalSet(
            f"customer_intent{suffix}",
            f"{folder}customer_intent.jsonl",
            "customer_intent",
            language=language,
        ),
    )


SETS: tuple[EvalSet, ...] = (*_sets("en", ""), *_sets("zh", "zh/"))


class Backend(Protocol):
    methods: tuple[str, ...]

    async def predict(self, evalset: EvalSet, texts: list[str]) -> dict[str, list[str]]:
        """Predicted labels per method."""
        ...


# --------------------------------------------------------------------------- in process
class InProcess:
    """The engine in this process; `service` is the service function itself."""

    methods: tuple[str, ...] = METHODS

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    async def predict(self, evalset: EvalSet, texts: list[str]) -> dict[str, list[str]]:
        spec = replace(
            classify_prompts.label_spec(evalset.request(texts)), language=evalset.language
        )
        out: dict[str, list[str]] = {m: [] for m in self.methods}
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            prepared = service.prepare(
                evalset.request(batch),
                self.engine,
                self.settings,
                Caller(),
                request_id=f"eval-{start}",
            )
            response = await service.classify(prepared, self.engine)
            prior = cache_for(self.engine).peek(prior_key(prepared.model, spec))
            assert prior is not None
            for r in response.results:
                out["service"].append(r.label)
                # softmax(s - prior) = p, so s = log p + prior + const: undo the calibration.
                raw = [math.log(max(r.scores[label], 1e-300)) for label in spec.labels]
                out["chat"].append(_argmax(spec.labels, _plus(raw, prior.logprobs)))
        out["raw"] = await self._raw(spec, texts)
        out["choice"] = await self._choice(spec, texts)
        return out

    async def _raw(self, spec: classify_prompts.LabelSpec, texts: list[str]) -> list[str]:
        tok = self.engine.tokenizer
        instruction = classify_prompts.messages(spec, "")[0]["content"]
        prompts = [tok.encode(f"{instruction}\n\n{t}\n{spec.answer}") for t in texts]
        labels = classify_prompts.label_ids(tok, spec.labels)
        scored = await scoring.label_logprobs(
            self.engine, prompts, labels, "eval-raw", dispatch=Dispatch()
        )
        return [_argmax(spec.labels, row) for row in scored.logprobs]

    async def _choice(self, spec: classify_prompts.LabelSpec, texts: list[str]) -> list[str]:
        tok = self.engine.tokenizer
        longest = max(len(ids) for ids in classify_prompts.label_ids(tok, spec.labels))
        options = SamplingOptions(
            max_tokens=longest + 2,
            temperature=0.0,
            structured=StructuredOutput(choice=spec.labels),
        )
        # As one would on /v1/chat/completions: the same turns, no answer opening.
        prompts = [
            tok.encode(
                tok.apply_chat_template(classify_prompts.messages(spec, t)),
                add_special_tokens=False,
            )
            for t in texts
        ]
        requests = [Dispatch().request(prompt, options) for prompt in prompts]
        results = await run_to_completion(self.engine, requests, "eval-choice")
        return [r.sequences[0].text.strip() for r in results]


def _plus(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _argmax(labels: Sequence[str], values: Sequence[float]) -> str:
    return labels[max(range(len(values)), key=values.__getitem__)]


# --------------------------------------------------------------------------- over HTTP
class OverHTTP:
    """A running gateway: /v1/classify, and /v1/chat/completions with a choice constraint."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        model: str,
        methods: tuple[str, ...] = ("service", "choice"),
    ) -> None:
        self.client = client
        self.model = model
        self.methods = methods

    async def predict(self, evalset: EvalSet, texts: list[str]) -> dict[str, list[str]]:
        spec = replace(
            classify_prompts.label_spec(evalset.request(texts)), language=evalset.language
        )
        out: dict[str, list[str]] = {m: [] for m in self.methods}
        for start in range(0, len(texts), BATCH):
            body = evalset.request(texts[start : start + BATCH]).model_dump(exclude_none=True)
            response = await self.client.post("/v1/classify", json=body)
            response.raise_for_status()
            out["service"] += [r["label"] for r in response.json()["results"]]
        if "choice" in self.methods:
            out["choice"] = list(await asyncio.gather(*(self._choice(spec, t) for t in texts)))
        return out

    async def _choice(self, spec: classify_prompts.LabelSpec, text: str) -> str:
        response = await self.client.post(
            "/v1/chat/completions",
            json={
                "model": self.model,
                "messages": classify_prompts.messages(spec, text),
                "temperature": 0,
                "max_tokens": 32,
                "structured_outputs": {"choice": list(spec.labels)},
            },
        )
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"]).strip()


# --------------------------------------------------------------------------- report
async def evaluate(
    backend: Backend, sets: Sequence[EvalSet], *, folder: Path = DATA, limit: int | None = None
) -> dict[str, dict[str, float]]:
    header = f"{'set':<20} {'n':>3} " + " ".join(f"{m:>8}" for m in backend.methods)
    print(header + f" {'seconds':>8}", flush=True)
    table: dict[str, dict[str, float]] = {}
    totals = {m: 0 for m in backend.methods}
    count = 0
    for evalset in sets:
        items = evalset.items(folder, limit=limit)
        texts, gold = [t for t, _ in items], [g for _, g in items]
        began = time.perf_counter()
        predicted = await backend.predict(evalset, texts)
        seconds = time.perf_counter() - began
        row = {}
        for m in backend.methods:
            right = sum(p == g for p, g in zip(predicted[m], gold, strict=True))
            totals[m] += right
            row[m] = right / len(gold)
        count += len(gold)
        table[evalset.name] = row
        cells = " ".join(f"{row[m]:>8.2f}" for m in backend.methods)
        print(f"{evalset.name:<20} {len(gold):>3} {cells} {seconds:>8.1f}", flush=True)
    table["all"] = {m: totals[m] / count for m in backend.methods}
    cells = " ".join(f"{table['all'][m]:>8.2f}" for m in backend.methods)
    print(f"{'all':<20} {count:>3} {cells}")
    return table


async def run_in_process(sets: Sequence[EvalSet], *, folder: Path, cost: bool) -> None:
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from service.engine.vllm import VLLMEngine
    from service.weights import resolve_model

    settings = Settings(**TEST_PROFILE)
    engine = await asyncio.to_thread(VLLMEngine.start, settings, model_path=resolve_model(settings))
    try:
        print(f"model {settings.model_name}, in process (test profile)\n")
        if sets:
            await evaluate(InProcess(engine, settings), sets, folder=folder)
        if cost:
            from evals.classify_cost import measure, measure_against_completion, measure_warm_up

            print()
            await measure_warm_up(engine, settings)
            print()
            await measure(engine)
            print()
            await measure_against_completion(engine, settings)
    finally:
        engine.shutdown()


async def run_over_http(base_url: str, sets: Sequence[EvalSet], *, folder: Path) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=3600) as client:
        models = (await client.get("/v1/models")).json()["data"]
        model = str(models[0]["id"])
        print(f"model {model} at {base_url}\n")
        await evaluate(OverHTTP(client, model), sets, folder=folder)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals classify", description=__doc__)
    parser.add_argument("--base-url", help="a running gateway (default: the engine in process)")
    parser.add_argument(
        "--sets", help="comma-separated set names (default: all; 'none' with --cost: only that)"
    )
    parser.add_argument("--cost", action="store_true", help="also time the scoring methods")
    parser.add_argument(
        "--dev", action="store_true", help="the development sets the prompts were chosen on"
    )
    args = parser.parse_args(argv)
    sets = SETS
    if args.sets:
        wanted = set(args.sets.split(","))
        sets = tuple(s for s in SETS if s.name in wanted)
    folder = DATA / "dev" if args.dev else DATA
    if args.base_url:
        asyncio.run(run_over_http(args.base_url.rstrip("/"), sets, folder=folder))
    else:
        asyncio.run(run_in_process(sets, folder=folder, cost=args.cost))
    return 0

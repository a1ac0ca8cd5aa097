"""Summarize evaluations: quality against references, and length compliance.

    python -m evals summarize                          # in process: the real engine, test profile
    python -m evals summarize --base-url URL           # a running gateway, over HTTP
    python -m evals summarize --part quality --limit 2 # 2 texts a language, quality only

Quality (`evals/summary_quality.py`): every text of `data/summarize.jsonl` (English) and
`data/summarize_zh.jsonl` (Chinese) in every style at its default length; ROUGE-L F1 against
the hand-written reference (word-level for English, character-level for Chinese), the share of
summaries in the text's language, `language_mismatch`, `truncated`, and the summaries that end
mid-sentence while `truncated` is false.

Length compliance: the English texts under each length setting below; a summary complies when it
is not empty and its `summary_tokens` lie within [min_length, max_length]. The table also shows
how often the maximum cut a summary (finish "length"). Exit status 1 when one does not comply.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from evals import summary_quality as quality
from service.caller import Caller
from service.config import TEST_PROFILE, Settings
from service.schemas.tasks import SummarizeRequest
from service.services.tasks import summarize as service

# (style, min_length, max_length): the bounds a user would ask for.
SETTINGS: tuple[tuple[str, int | None, int], ...] = (
    ("paragraph", None, 60),
    ("paragraph", 40, 100),
    ("bullets", None, 80),
    ("headline", None, 16),
)


async def length_compliance(summarize: quality.Summarize, texts: list[str]) -> list[dict[str, Any]]:
    rows = []
    for style, low, high in SETTINGS:
        body: dict[str, Any] = {"texts": texts, "style": style, "max_length": high}
        if low is not None:
            body["min_length"] = low
        results = await summarize(body)
        tokens = [x["summary_tokens"] for x in results]
        ok = [bool(x["summary"]) and (low or 0) <= x["summary_tokens"] <= high for x in results]
        rows.append(
            {
                "style": style,
                "min": low,
                "max": high,
                "texts": len(results),
                "compliant": sum(ok),
                "cut_at_max": sum(x["finish_reason"] == "length" for x in results),
                "tokens_min": min(tokens),
                "tokens_max": max(tokens),
            }
        )
    return rows


def length_markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| style | min | max | compliant | cut at max | summary tokens |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['style']} | {r['min'] or '-'} | {r['max']} | {r['compliant']}/{r['texts']} "
        f"| {r['cut_at_max']} | {r['tokens_min']}-{r['tokens_max']} |"
        for r in rows
    ]
    return "\n".join(lines)


@asynccontextmanager
async def in_process() -> AsyncIterator[quality.Summarize]:
    """The service function on a real engine started in this process (test profile)."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from service.engine.vllm import VLLMEngine
    from service.weights import resolve_model

    settings = Settings(**TEST_PROFILE)
    engine = await asyncio.to_thread(VLLMEngine.start, settings, model_path=resolve_model(settings))

    async def call(body: dict[str, Any]) -> list[dict[str, Any]]:
        prepared = service.prepare(SummarizeRequest(**body), engine, settings, Caller())
        response = await service.summarize(prepared, engine)
        return [r.model_dump() for r in response.results]

    try:
        print(f"model {settings.model_name}, in process (test profile)\n", flush=True)
        yield call
    finally:
        engine.shutdown()


@asynccontextmanager
async def over_http(base_url: str) -> AsyncIterator[quality.Summarize]:
    async with httpx.AsyncClient(base_url=base_url, timeout=3600) as client:
        models = (await client.get("/v1/models")).json()["data"]
        print(f"model {models[0]['id']} at {base_url}\n", flush=True)
        yield quality.over_http(client)


async def run(args: argparse.Namespace) -> int:
    items = [i for language in quality.FILES for i in quality.load(language, limit=args.limit)]
    backend = over_http(args.base_url.rstrip("/")) if args.base_url else in_process()
    compliant = True
    async with backend as summarize:
        if args.part in ("quality", "all"):
            scored = await quality.evaluate(summarize, items)
            print(quality.markdown(quality.rows(scored)) + "\n", flush=True)
            if args.show:
                for s in scored:
                    print(f"[{s.language} {s.style} {s.rouge_l:.2f}] {s.summary!r}")
                print()
        if args.part in ("lengths", "all"):
            english = [i.text for i in items if i.language == "en"]
            rows = await length_compliance(summarize, english)
            print(length_markdown(rows))
            compliant = all(r["compliant"] == r["texts"] for r in rows)
    return 0 if compliant else 1


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals summarize", description=__doc__)
    parser.add_argument("--base-url", help="a running gateway (default: the engine in process)")
    parser.add_argument("--part", choices=("quality", "lengths", "all"), default="all")
    parser.add_argument("--limit", type=int, help="the first N texts of each language")
    parser.add_argument("--show", action="store_true", help="print every summary")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))

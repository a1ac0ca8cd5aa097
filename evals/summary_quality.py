"""Summary quality: ROUGE-L against hand-written references, per style and language, and whether
summaries are in the text's language and end where a sentence ends.

The sets (`data/summarize.jsonl`, English; `data/summarize_zh.jsonl`, Simplified Chinese) hold
one `{"text", "language", "references": {"paragraph", "bullets", "headline"}}` object a line,
written for this project. ROUGE-L F1 is Google's `rouge-score` with a tokenizer that keeps runs of
Latin letters and digits (lower-cased, like its default one) and makes every CJK character a
token: word-level for English, character-level for Chinese (its default tokenizer would drop
the Chinese altogether).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rouge_score import rouge_scorer

from service.services.tasks.languages import script
from service.services.tasks.summary_text import ends_mid_sentence

DATA = Path(__file__).parent / "data"
STYLES: tuple[str, ...] = ("paragraph", "bullets", "headline")
FILES = {"en": "summarize.jsonl", "zh": "summarize_zh.jsonl"}

# One summarize call: a /v1/summarize body -> its `results`, over HTTP or in process.
Summarize = Callable[[dict[str, Any]], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class Item:
    text: str
    language: str
    references: dict[str, str]


def load(language: str, *, limit: int | None = None, folder: Path = DATA) -> list[Item]:
    """The first `limit` texts (all by default) of a language's set."""
    lines = (folder / FILES[language]).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [Item(r["text"], r["language"], r["references"]) for r in rows[:limit]]


class ScriptTokenizer:
    """Words of Latin letters and digits, and single CJK characters (rouge-score's `tokenize`)."""

    _TOKEN = re.compile(
        r"[a-z0-9]+|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]"
    )

    def tokenize(self, text: str) -> list[str]:
        return self._TOKEN.findall(text.lower())


_SCORER = rouge_scorer.RougeScorer(["rougeL"], tokenizer=ScriptTokenizer())


def rouge_l(reference: str, summary: str) -> float:
    """ROUGE-L F1 of a summary against one reference."""
    return float(_SCORER.score(reference, summary)["rougeL"].fmeasure)


@dataclass(frozen=True)
class Scored:
    """One summary of one text in one style, and what was measured on it."""

    language: str
    style: str
    summary: str
    rouge_l: float
    in_language: bool  # the summary's script is the text's
    language_mismatch: bool  # as the service reported it
    truncated: bool
    mid_sentence: bool  # ends mid-sentence although `truncated` is false


def score(item: Item, style: str, result: dict[str, Any]) -> Scored:
    summary = str(result["summary"])
    truncated = bool(result["truncated"])
    return Scored(
        language=item.language,
        style=style,
        summary=summary,
        rouge_l=rouge_l(item.references[style], summary),
        in_language=script(summary) == script(item.text),
        language_mismatch=bool(result["language_mismatch"]),
        truncated=truncated,
        mid_sentence=not truncated and ends_mid_sentence(summary, style),
    )


async def evaluate(summarize: Summarize, items: Sequence[Item]) -> list[Scored]:
    """Every text in every style, at the style's default length: one batch call per style."""
    scored = []
    for style in STYLES:
        results = await summarize({"texts": [i.text for i in items], "style": style})
        scored += [score(i, style, r) for i, r in zip(items, results, strict=True)]
    return scored


@dataclass(frozen=True)
class Row:
    language: str
    style: str
    texts: int
    rouge_l: float  # mean F1
    in_language: int
    language_mismatch: int
    truncated: int
    mid_sentence: int


def rows(scored: Sequence[Scored]) -> list[Row]:
    """One row per (language, style), in the order they first appear."""
    keys = dict.fromkeys((s.language, s.style) for s in scored)
    out = []
    for language, style in keys:
        group = [s for s in scored if (s.language, s.style) == (language, style)]
        out.append(
            Row(
                language=language,
                style=style,
                texts=len(group),
                rouge_l=sum(s.rouge_l for s in group) / len(group),
                in_language=sum(s.in_language for s in group),
                language_mismatch=sum(s.language_mismatch for s in group),
                truncated=sum(s.truncated for s in group),
                mid_sentence=sum(s.mid_sentence for s in group),
            )
        )
    return out


def markdown(table: Sequence[Row]) -> str:
    lines = [
        "| language | style | texts | ROUGE-L F1 | in the text's language | language_mismatch "
        "| truncated | mid-sentence, not truncated |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.language} | {r.style} | {r.texts} | {r.rouge_l:.3f} | {r.in_language}/{r.texts} "
        f"| {r.language_mismatch} | {r.truncated} | {r.mid_sentence} |"
        for r in table
    ]
    return "\n".join(lines)


def over_http(client: httpx.AsyncClient) -> Summarize:
    """`/v1/summarize` of the gateway `client` points at."""

    async def call(body: dict[str, Any]) -> list[dict[str, Any]]:
        response = await client.post("/v1/summarize", json=body)
        response.raise_for_status()
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    return call

"""Summarize length compliance: do summaries stay within the requested token bounds?

    make serve &                                   # or any running gateway
    python -m evals summarize --base-url http://127.0.0.1:8000

Every text in evals/data/summarize.jsonl is summarized under each length setting below; a
summary complies when it is not empty and its `summary_tokens` lie within [min_length,
max_length]. The table also shows how often the maximum cut a summary (finish "length").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx

DATA = Path(__file__).parent / "data" / "summarize.jsonl"
# (style, min_length, max_length): the bounds a user would ask for.
SETTINGS: tuple[tuple[str, int | None, int], ...] = (
    ("paragraph", None, 60),
    ("paragraph", 40, 100),
    ("bullets", None, 80),
    ("headline", None, 16),
)


def run(base_url: str) -> list[dict[str, Any]]:
    texts = [json.loads(line)["text"] for line in DATA.read_text().splitlines() if line]
    rows = []
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for style, low, high in SETTINGS:
            body: dict[str, Any] = {"texts": texts, "style": style, "max_length": high}
            if low is not None:
                body["min_length"] = low
            r = client.post("/v1/summarize", json=body)
            r.raise_for_status()
            results = r.json()["results"]
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals summarize")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    rows = run(args.base_url)
    print("| style | min | max | compliant | cut at max | summary tokens |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['style']} | {r['min'] or '-'} | {r['max']} | {r['compliant']}/{r['texts']} "
            f"| {r['cut_at_max']} | {r['tokens_min']}-{r['tokens_max']} |"
        )
    return 0 if all(r["compliant"] == r["texts"] for r in rows) else 1

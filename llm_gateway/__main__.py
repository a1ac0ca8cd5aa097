"""`python -m llm_gateway`: the client's commands.

    python -m llm_gateway batch run INPUT.jsonl --endpoint /v1/summarize -o OUT.jsonl

The gateway's address and key come from `--base-url` / `--api-key`, else the variables the
client reads (`LLM_GATEWAY_BASE_URL`, `LLM_GATEWAY_API_KEY`, then the `OPENAI_*` ones).
"""

from __future__ import annotations

import argparse
import sys

from llm_gateway import _batch

BATCH_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/generate",
    "/v1/summarize",
    "/v1/classify",
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m llm_gateway", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    batch = commands.add_parser("batch", help="batch jobs (OpenAI's Batch API)")
    actions = batch.add_subparsers(dest="action", required=True)
    run = actions.add_parser(
        "run", help="upload INPUT, run it as a batch with a progress bar, write the results"
    )
    run.add_argument("input", metavar="INPUT.jsonl", help="one request (or request body) a line")
    run.add_argument("--endpoint", required=True, choices=BATCH_ENDPOINTS)
    run.add_argument("-o", "--output", required=True, metavar="OUT.jsonl")
    run.add_argument("--base-url", default=None, help="the gateway, e.g. http://host:8000/v1")
    run.add_argument("--api-key", default=None)
    run.add_argument("--metadata", action="append", metavar="KEY=VALUE", default=[])
    run.add_argument("--poll", type=float, default=1.0, help="seconds between status checks")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return _batch.main(args)


if __name__ == "__main__":
    sys.exit(main())

"""`python -m evals <task> [options]`: run one task's evaluation (see evals/README.md)."""

from __future__ import annotations

import sys

from evals import classify, summarize

TASKS = {"classify": classify.main, "summarize": summarize.main}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TASKS:
        print(f"usage: python -m evals {{{','.join(TASKS)}}} [options]", file=sys.stderr)
        return 2
    return TASKS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""`python -m service.weights prepare [--model ID] [--download-dir DIR]`"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from service.config import Settings


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m service.weights")
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="make a model available offline")
    prep.add_argument("--model", default=settings.model)
    prep.add_argument("--download-dir", type=Path, default=settings.download_dir)
    commands.add_parser("path", help="print what the engine will load for the configured model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "prepare":
        from service.weights.prepare import prepare

        print(prepare(args.model, args.download_dir))
    else:
        from service.weights.resolve import resolve_model

        print(resolve_model(settings))


if __name__ == "__main__":
    main()

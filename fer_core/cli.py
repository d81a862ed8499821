"""`python -m fer_core ...`: every capability of the app as a command."""

from __future__ import annotations

import argparse
import os
import sys

from fer_core.cli_train import add_train_parser, run_train_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_core", description="Facial emotion recognition.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    handlers = {"train": run_train_command}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

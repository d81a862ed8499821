"""`python -m fer_core ...`: every capability of the app as a command.

One module per family of commands, each adding its own sub-parsers: photos (predict, label,
export, video), evaluation (evaluate, calibrate), models (models, measure, ensemble, quantize),
training (train) and runs (runs).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from fer_core.cli import evaluation, models, photos
from fer_core.cli.runs import add_runs_parser
from fer_core.cli.training import add_train_parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every family's sub-commands, each with its handler."""
    parser = argparse.ArgumentParser(prog="python -m fer_core", description="Facial emotion recognition.")
    sub = parser.add_subparsers(dest="command", required=True)
    photos.add_parsers(sub)
    evaluation.add_parsers(sub)
    models.add_parsers(sub)
    add_train_parser(sub)
    add_runs_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; expected errors print a message and return non-zero."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fer_core.datasets import DatasetError
    from fer_core.detect import DetectorError
    from fer_core.registry import ModelError

    args = build_parser().parse_args(argv)
    args.command_line = "python -m fer_core " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        return args.handler(args)
    except (ModelError, DetectorError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

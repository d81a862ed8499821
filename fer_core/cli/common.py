"""Options and helpers several families of commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_core.detect import DEFAULT_DETECTOR, DETECTOR_NOTES
from fer_core.tta import TTA_MODES


def add_labelled_set_options(p: argparse.ArgumentParser, required: bool, many: bool = False) -> None:
    """--data, --usage and --model: a labelled set (or several, with `many`) and the model measured on it."""
    p.add_argument(
        "--data",
        required=required,
        type=Path,
        nargs="+" if many else None,
        metavar="DIR",
        help="class folders or a FER-2013 CSV (e.g. your own labelled photos)"
        + ("; several are measured side by side" if many else ""),
    )
    p.add_argument("--usage", help="with a FER CSV: only rows with this Usage (e.g. PublicTest)")
    p.add_argument("--model", help="registered model (default: the active one)")


def add_tta_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tta",
        default="none",
        choices=sorted(TTA_MODES),
        # argparse formats help with %: a literal one ("6% of its side") must be doubled.
        help="test-time augmentation; " + "; ".join(f"{k}: {v}" for k, v in TTA_MODES.items()).replace("%", "%%"),
    )


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="registered model (default: the active one)")
    p.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        choices=sorted(DETECTOR_NOTES),
        help="; ".join(f"{k}: {v}" for k, v in DETECTOR_NOTES.items()),
    )
    add_tta_option(p)


def recognizer_of(args):
    from fer_core.recognizer import EmotionRecognizer

    return EmotionRecognizer.from_registry(args.model, detector=args.detector, tta=args.tta)

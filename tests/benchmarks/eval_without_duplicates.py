"""Test accuracy of a model on the FER-2013 test files whose bytes do not also appear in train.

.venv/bin/python -m tests.benchmarks.eval_without_duplicates [--model NAME] [--tta MODE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from fer_core.datasets import load_class_folders
from fer_core.evaluation import evaluate_classifier
from fer_core.models import load_classifier
from fer_core.registry import get_model
from fer_core.tta import TTA_MODES


def file_hashes(root: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="registered model (default: the active one)")
    parser.add_argument("--tta", default="none", choices=sorted(TTA_MODES))
    parser.add_argument("--train", type=Path, default=Path("../shared/datasets/fer2013/train"))
    parser.add_argument("--test", type=Path, default=Path("../shared/datasets/fer2013/test"))
    args = parser.parse_args()

    info = get_model(args.model)
    test = load_class_folders(args.test, spec=info.preprocessing)
    seen = file_hashes(args.train)
    keep = np.array(
        [hashlib.sha256((args.test / s).read_bytes()).hexdigest() not in seen for s in test.sources], dtype=bool
    )
    metrics, _ = evaluate_classifier(load_classifier(info, tta=args.tta), test.subset(np.flatnonzero(keep)))
    print(
        json.dumps(
            {
                "model": info.name,
                "tta": args.tta,
                "test_files": len(test),
                "also_in_train": int((~keep).sum()),
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
            }
        )
    )


if __name__ == "__main__":
    main()

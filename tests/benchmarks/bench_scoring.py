"""Scoring a whole labelled set in one process: one interpreter thread against every core.

    .venv/bin/python -m tests.benchmarks.bench_scoring [--models A B ...] [--data DIR] [--repeats N]

What `evaluate`, `ensemble` and every model card's measurements spend their time on: the logits of
each face of a set. For each model: seconds and faces per second with one thread (the baseline, as
those commands ran before they used every core) and with `scoring_threads()`, best of --repeats, and
the largest difference between the two runs' logits (threads split the work, not the arithmetic).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from fer_core.datasets import load_labeled  # noqa: E402
from fer_core.evaluation import classifier_logits, scoring_threads  # noqa: E402
from fer_core.models import load_classifier  # noqa: E402
from fer_core.registry import get_model  # noqa: E402


def timed_logits(name: str, data, threads: int, repeats: int) -> tuple[float, np.ndarray]:
    classifier = load_classifier(get_model(name), num_threads=threads)
    best, logits = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        logits = classifier_logits(classifier, data)
        best = min(best, time.perf_counter() - start)
    return best, logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["fer2013-resnet-distilled", "realfaces-sextet"])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/fer2013/test"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    many = scoring_threads()
    print(f"{args.data}; {os.cpu_count()} cores; best of {args.repeats}")
    print(f"{'model':28} {'faces':>6} {'1 thread s':>11} {f'{many} threads s':>12} {'speed-up':>9} {'max |diff|':>11}")
    for name in args.models:
        data = load_labeled(args.data, spec=get_model(name).preprocessing)
        one, base = timed_logits(name, data, 1, args.repeats)
        all_cores, logits = timed_logits(name, data, many, args.repeats)
        diff = float(np.abs(base - logits).max())
        print(f"{name:28} {len(data):6d} {one:11.2f} {all_cores:12.2f} {one / all_cores:8.2f}x {diff:11.2e}")


if __name__ == "__main__":
    main()

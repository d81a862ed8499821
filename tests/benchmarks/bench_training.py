"""Training throughput (images/s): architectures x precision, against a naive baseline in the same run.

Ours: the real training input pipeline (uint8 crops in memory, tf.data with parallel batched
augmentation, prefetch) feeding `model.fit`. Baseline: plain `model.fit` on float32 NumPy
arrays, no tf.data and no augmentation, float32.

    .venv/bin/python -m tests.benchmarks.bench_training [--steps 40] [--batch-size 64]

`--onednn` instead compares TensorFlow's oneDNN kernels off and on (TF_ENABLE_ONEDNN_OPTS=0/1; TensorFlow
turns them on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX, and `fer_core` training turns
them on everywhere): our float32 pipeline per architecture, each setting in its own process (the
switch is read when TensorFlow loads), alternating for `--rounds` rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fer_core.datasets import load_class_folders  # noqa: E402
from fer_core.train.architectures import build_model  # noqa: E402
from fer_core.train.config import Augmentation  # noqa: E402
from fer_core.train.data import class_weights, training_dataset  # noqa: E402
from tests.helpers import SHARED  # noqa: E402


def _compile(model: keras.Model) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    return model


def ours(arch: str, policy: str, images, labels, steps: int, batch: int) -> float:
    keras.mixed_precision.set_global_policy(policy)
    model = _compile(build_model(arch))
    ds = training_dataset(images, labels, class_weights(labels, "sqrt"), batch, Augmentation(), 0.1, 0).repeat()
    model.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)  # warm-up: tracing, oneDNN kernels
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def naive(arch: str, images, labels, steps: int, batch: int) -> float:
    keras.mixed_precision.set_global_policy("float32")
    model = _compile(build_model(arch))
    x = images[: steps * batch].astype(np.float32)[..., None]
    y = keras.utils.to_categorical(labels[: steps * batch], 7)
    model.fit(x[: 5 * batch], y[: 5 * batch], batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
    return steps * batch / (time.perf_counter() - start)


def compare_onednn(architectures: list[str], steps: int, batch: int, rounds: int) -> None:
    """Our float32 pipeline's images/s with oneDNN off and on, each run in a child process."""
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for arch in architectures:
            for setting in ("0", "1"):
                command = [sys.executable, "-m", "tests.benchmarks.bench_training", "--architectures", arch]
                command += ["--steps", str(steps), "--batch-size", str(batch), "--float32-only"]
                env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting}
                out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
                rate = json.loads(out.strip().splitlines()[-1])["ours_float32"]
                results.setdefault((arch, setting), []).append(rate)
    print("| architecture | oneDNN off, images/s | oneDNN on, images/s | on / off |")
    print("|---|---|---|---|")
    for arch in architectures:
        off, on = results[(arch, "0")], results[(arch, "1")]
        runs_off = ", ".join(f"{r:.0f}" for r in off)
        runs_on = ", ".join(f"{r:.0f}" for r in on)
        print(f"| {arch} | {runs_off} | {runs_on} | {np.median(on) / np.median(off):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--architectures", default="compact,vgg")
    parser.add_argument("--onednn", action="store_true", help="compare oneDNN kernels off and on (float32)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the --onednn comparison")
    parser.add_argument("--float32-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.onednn:
        compare_onednn(args.architectures.split(","), args.steps, args.batch_size, args.rounds)
        return
    data = load_class_folders(SHARED / "train")
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(data))[: max(args.steps * args.batch_size, 4096)]
    images, labels = data.images[pick], data.labels[pick]
    rows = []
    for arch in args.architectures.split(","):
        row = {"architecture": arch, "parameters": int(build_model(arch).count_params())}
        row["ours_float32"] = ours(arch, "float32", images, labels, args.steps, args.batch_size)
        if args.float32_only:
            print(json.dumps(row))
            return
        row["ours_bfloat16"] = ours(arch, "mixed_bfloat16", images, labels, args.steps, args.batch_size)
        row["naive_fit_float32"] = naive(arch, images, labels, args.steps, args.batch_size)
        rows.append(row)
        print(json.dumps(row))
    print(f"{'architecture':<12}{'params':>10}{'ours bf16':>12}{'ours fp32':>12}{'naive fp32':>12}  images/s")
    for r in rows:
        print(
            f"{r['architecture']:<12}{r['parameters']:>10,}{r['ours_bfloat16']:>12.0f}{r['ours_float32']:>12.0f}"
            f"{r['naive_fit_float32']:>12.0f}"
        )


if __name__ == "__main__":
    main()

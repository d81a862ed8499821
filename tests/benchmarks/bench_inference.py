"""Inference benchmarks: classifier cost per face, live frame time, batch photos/s, detector recall.

Each figure is measured against a baseline in the same run: the `fer` library's approach
(full-resolution Haar cascade + one Keras `predict` call per face), re-implemented here on
the same model so only the approach differs.

    .venv/bin/python -m tests.benchmarks.bench_inference [--model NAME] [--frames 300] [--photos 300]

It also exports the model in every stored-weights mode (float32, float16, int8 weights, full
int8) and compares their size, accuracy and cost per face (see bench_quantization).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_core.detect import DEFAULT_DETECTOR, make_detector  # noqa: E402
from fer_core.imageio import encode_jpeg, read_image  # noqa: E402
from fer_core.labeling import label_sources  # noqa: E402
from fer_core.live import LiveProcessor, LiveSettings  # noqa: E402
from fer_core.models import Classifier, load_classifier  # noqa: E402
from fer_core.recognizer import EmotionRecognizer  # noqa: E402
from fer_core.registry import get_model  # noqa: E402
from fer_core.types import Box  # noqa: E402
from tests.benchmarks.scenes import load_faces, make_scenes, recall  # noqa: E402


class FerStyleBaseline:
    """`fer`'s pipeline: Haar on the full grayscale frame, then `model.predict` once per face."""

    def __init__(self, keras_model, size: int):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        self.model, self.size = keras_model, size

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(50, 50))
        return [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]

    def analyze(self, image: np.ndarray) -> list[tuple[Box, np.ndarray]]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        out = []
        for box in self.detect(image):
            x0, y0 = max(box.x - 10, 0), max(box.y - 10, 0)
            crop = gray[y0 : box.y + box.h + 10, x0 : box.x + box.w + 10]
            face = cv2.resize(crop, (self.size, self.size)).astype(np.float32)[None, :, :, None]
            out.append((box, self.model.predict(face, verbose=0)[0]))
        return out


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def litert_costs(classifier: Classifier, crops: np.ndarray, repeats: int = 200) -> dict:
    """Milliseconds per face at batch 1 and batch 64 (crops: 64 uint8 faces)."""
    for _ in range(10):
        classifier.logits(crops[:1])
        classifier.logits(crops)
    return {
        "litert_batch1_ms_per_face": median_ms(lambda: classifier.logits(crops[:1]), repeats),
        "litert_batch64_ms_per_face": median_ms(lambda: classifier.logits(crops), repeats // 4) / 64,
    }


def per_face_costs(info, classifier: Classifier, keras_model, repeats: int = 200) -> dict:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (64, info.card["input_size"], info.card["input_size"]), dtype=np.uint8)
    x64 = crops.astype(np.float32)[..., None]
    for _ in range(10):
        keras_model.predict(x64[:1], verbose=0)
        keras_model.predict(x64, verbose=0)
    return {
        **litert_costs(classifier, crops, repeats),
        "keras_predict_batch1_ms_per_face": median_ms(lambda: keras_model.predict(x64[:1], verbose=0), repeats // 4),
        "keras_predict_batch64_ms_per_face": median_ms(lambda: keras_model.predict(x64, verbose=0), repeats // 8) / 64,
    }


def weight_precision(info, keras_model, test_data: Path) -> dict:
    """Each way of storing the model's weights: file size, accuracy, cost per face (bench_quantization)."""
    from tests.benchmarks.bench_models import Sets, training_config
    from tests.benchmarks.bench_quantization import weight_modes

    sets = Sets(Path("../shared/datasets/fer2013/train"), test_data)
    return weight_modes(keras_model, sets.for_model(info.preprocessing, training_config(info)))


def live_frames(scenes, recognizer: EmotionRecognizer, baseline: FerStyleBaseline, frames: int) -> dict:
    processor = LiveProcessor(recognizer, LiveSettings(mirror=True, show_probabilities=True))
    ours, theirs = [], []
    for i in range(frames):
        image = scenes[i % len(scenes)][0]
        start = time.perf_counter()
        processor.process(image)
        ours.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        baseline.analyze(image)
        theirs.append((time.perf_counter() - start) * 1000)
    ours_ms, theirs_ms = statistics.median(ours[10:]), statistics.median(theirs[10:])
    return {
        "ours_median_ms_per_frame": ours_ms,
        "ours_p90_ms": float(np.percentile(ours[10:], 90)),
        "fer_style_median_ms_per_frame": theirs_ms,
        "speedup": theirs_ms / ours_ms,
    }


def batch_photos(scenes, recognizer: EmotionRecognizer, baseline: FerStyleBaseline, photos: int) -> dict:
    jpegs = [encode_jpeg(scenes[i % len(scenes)][0]) for i in range(photos)]
    items = [(f"p{i}.jpg", (lambda b=b: b)) for i, b in enumerate(jpegs)]
    start = time.perf_counter()
    rows = list(label_sources(items, recognizer))
    ours = photos / (time.perf_counter() - start)
    start = time.perf_counter()
    for data in jpegs:
        baseline.analyze(read_image(data))
    theirs = photos / (time.perf_counter() - start)
    return {"ours_photos_per_s": ours, "fer_style_photos_per_s": theirs, "speedup": ours / theirs, "rows": len(rows)}


def detector_quality(scenes, detectors: dict) -> dict:
    out = {}
    for name, detector in detectors.items():
        start = time.perf_counter()
        found = [detector.detect(image) for image, _ in scenes]
        seconds = time.perf_counter() - start
        r, false = recall(scenes, found)
        out[name] = {"recall": r, "false_per_image": false, "ms_per_image": seconds * 1000 / len(scenes)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="registered model (default: the active one)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--recall-scenes", type=int, default=200)
    parser.add_argument("--mtcnn-scenes", type=int, default=60)
    parser.add_argument(
        "--test-data", type=Path, default=Path("../shared/datasets/fer2013/test"), help="labelled set for accuracy"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    import keras

    info = get_model(args.model)
    classifier = load_classifier(info)
    keras_model = keras.saving.load_model(info.verify("model.keras"), safe_mode=True)
    recognizer = EmotionRecognizer(
        classifier, make_detector(DEFAULT_DETECTOR), info.preprocessing, model_name=info.name
    )
    baseline = FerStyleBaseline(keras_model, info.card["input_size"])
    faces = load_faces()
    scenes = make_scenes(max(args.recall_scenes, 60), faces, seed=1)
    results = {"model": info.name, "cpu_count": os.cpu_count()}
    results["per_face"] = per_face_costs(info, classifier, keras_model)
    if args.test_data.exists():
        results["stored_weights"] = weight_precision(info, keras_model, args.test_data)
    live = EmotionRecognizer(
        classifier, make_detector(DEFAULT_DETECTOR, live=True), info.preprocessing, model_name=info.name
    )
    results["live_640x480"] = live_frames(scenes, live, baseline, args.frames)  # the Live page's detector settings
    results["batch_640x480"] = batch_photos(scenes, recognizer, baseline, args.photos)
    mtcnn = make_detector("mtcnn")
    results["detectors"] = detector_quality(
        scenes[: args.recall_scenes],
        {
            f"{DEFAULT_DETECTOR} (default)": recognizer.detector,
            "blazeface_full": make_detector("blazeface_full"),
            "haar (ours, 320 px)": make_detector("haar"),
            "haar full-res (fer-style)": baseline,
        },
    )
    results["detectors"].update(detector_quality(scenes[: args.mtcnn_scenes], {"mtcnn (accurate)": mtcnn}))
    mtcnn_recognizer = EmotionRecognizer(classifier, mtcnn, info.preprocessing)
    results["batch_640x480"]["mtcnn_photos_per_s"] = batch_photos(
        scenes[: args.mtcnn_scenes], mtcnn_recognizer, baseline, args.mtcnn_scenes
    )["ours_photos_per_s"]
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

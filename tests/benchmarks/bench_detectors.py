"""Face detection on real photos and composed scenes: recall, speed, found-and-labelled-right, alignment.

Every detector runs in the same process on the same images, so the old default (BlazeFace)
is the baseline of each figure.

    .venv/bin/python -m tests.benchmarks.bench_detectors [--scenes 200] [--skip-mtcnn]

- Real photos: `../shared/datasets/faces_in_photos` (43 faces in 9 group photos, boxes given),
  as they are (500x375), shrunk to 320x240 (faces about 24 px) and enlarged to 24 MP.
- Composed scenes: FER-2013 test faces pasted into 640x480 frames, "sparse" (1-3 faces of
  100-170 px) and "crowded" (6-12 faces of 32-64 px); a face counts as labelled right when the
  default model, fed the detector's box, gives its FER-2013 label.
- Speed: photos/s of the whole labelling path (decode, detect, classify) on 640x480 JPEGs
  (sparse and crowded scenes) and
  ms per 640x480 live frame (detect, classify, track, draw).
- Alignment: faces turned by 10-30 degrees pasted into scenes, classified with and without
  turning the crop upright from YuNet's eye landmarks (and upright faces as a control).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_core.detect import YuNetDetector, make_detector  # noqa: E402
from fer_core.imageio import encode_jpeg  # noqa: E402
from fer_core.labeling import label_sources  # noqa: E402
from fer_core.live import LiveProcessor, LiveSettings  # noqa: E402
from fer_core.models import Classifier, load_classifier  # noqa: E402
from fer_core.preprocess import preprocess_faces  # noqa: E402
from fer_core.recognizer import EmotionRecognizer  # noqa: E402
from fer_core.registry import get_model  # noqa: E402
from fer_core.types import Box  # noqa: E402
from tests.benchmarks.scenes import load_labelled_faces, make_scenes, matches, recall  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "faces_in_photos"


class YuNetBefore(YuNetDetector):
    """YuNet as the default ran before 2026-11-30: upstream's file on OpenCV's dnn module, the
    photo's longer side shrunk to 640 px and never enlarged."""

    def __init__(self):
        super().__init__(model_path=PHOTOS.parents[1] / "models" / "yunet" / "yunet_n_640_640.onnx", work_size=640)

    def scales(self, height: int, width: int) -> list[float]:
        return [1.0] if max(height, width) <= self.work_size else super().scales(height, width)


def real_photos(factor: float) -> list[tuple[np.ndarray, list[Box]]]:
    """The real photos resized by `factor`, with their true boxes."""
    truth = json.loads((PHOTOS / "truth.json").read_text())
    out = []
    for name in sorted(truth):
        image = cv2.imread(str(PHOTOS / name))
        if factor != 1:
            shrink = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=shrink)
        boxes = [Box(*(round(v * factor) for v in b)) for b in truth[name]["boxes"]]
        out.append((image, boxes))
    return out


def photo_hit(truth: Box, found: Box) -> bool:
    """The photo set's rule: IoU >= 0.4, or the true box's centre inside the found box."""
    cx, cy = truth.x + truth.w / 2, truth.y + truth.h / 2
    return truth.iou(found) >= 0.4 or (found.x <= cx <= found.x + found.w and found.y <= cy <= found.y + found.h)


def photo_recall(detector, photos) -> dict:
    hits = total = 0
    start = time.perf_counter()
    found = [detector.detect(image) for image, _ in photos]
    ms = (time.perf_counter() - start) * 1000 / len(photos)
    for (_, truth), boxes in zip(photos, found):
        total += len(truth)
        hits += sum(any(photo_hit(t, b) for b in boxes) for t in truth)
    return {"recall": hits / total, "faces": total, "ms_per_photo": ms}


def scene_quality(detector, scenes, classifier: Classifier, spec) -> dict:
    """Recall, false detections and the share of true faces found *and* labelled right."""
    start = time.perf_counter()
    found = [detector.detect(image) for image, *_ in scenes]
    ms = (time.perf_counter() - start) * 1000 / len(scenes)
    r, false = recall(scenes, found)
    right = total = 0
    for (image, truth, labels), boxes in zip(scenes, found):
        total += len(truth)
        matched = [(next((b for b in boxes if matches(t, b)), None), label) for t, label in zip(truth, labels)]
        pairs = [(b, label) for b, label in matched if b is not None]
        if pairs:
            probs = classifier.predict_proba(preprocess_faces(image, [b for b, _ in pairs], spec))
            right += int(sum(int(np.argmax(p)) == label for p, (_, label) in zip(probs, pairs)))
    return {"recall": r, "false_per_image": false, "found_and_right": right / max(total, 1), "ms_per_image": ms}


def photos_per_second(recognizer: EmotionRecognizer, scenes, photos: int = 120) -> float:
    jpegs = [encode_jpeg(scenes[i % len(scenes)][0]) for i in range(photos)]
    items = [(f"p{i}.jpg", (lambda b=b: b)) for i, b in enumerate(jpegs)]
    list(label_sources(items[:16], recognizer))  # warm-up
    start = time.perf_counter()
    list(label_sources(items, recognizer))
    return photos / (time.perf_counter() - start)


def live_ms(recognizer: EmotionRecognizer, scenes, frames: int = 200) -> dict:
    processor = LiveProcessor(recognizer, LiveSettings(mirror=True, show_probabilities=True))
    times = []
    for i in range(frames):
        start = time.perf_counter()
        processor.process(scenes[i % len(scenes)][0])
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times[10:]), "p90_ms": float(np.percentile(times[10:], 90))}


def turned_scenes(faces, labels, angles, seed: int = 5) -> list[tuple]:
    """One 640x480 scene per face: the face enlarged to 160 px, turned by its angle, pasted."""
    rng = np.random.default_rng(seed)
    scenes = []
    for face, label, angle in zip(faces, labels, angles):
        base = rng.integers(40, 220, (60, 80, 3), dtype=np.uint8)
        image = cv2.GaussianBlur(cv2.resize(base, (640, 480), interpolation=cv2.INTER_CUBIC), (9, 9), 0)
        big = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
        turn = cv2.getRotationMatrix2D((80, 80), float(angle), 1.0)
        big = cv2.warpAffine(big, turn, (160, 160), borderMode=cv2.BORDER_REPLICATE)
        x, y = int(rng.integers(40, 440)), int(rng.integers(40, 280))
        image[y : y + 160, x : x + 160] = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
        scenes.append((image, [Box(x, y, 160, 160)], [label]))
    return scenes


def alignment(classifier: Classifier, spec, faces, labels) -> dict:
    """Accuracy on faces found by YuNet, classified with and without eye alignment."""
    detector = make_detector("yunet")
    rng = np.random.default_rng(3)
    out = {}
    tilted = rng.uniform(10, 30, len(faces)) * rng.choice([-1, 1], len(faces))
    for name, angles in (("upright", np.zeros(len(faces))), ("turned 10-30 degrees", tilted)):
        scenes = turned_scenes(faces, labels, angles)
        found, truth = [], []
        for image, (box,), (label,) in scenes:
            hit = next((b for b in detector.detect(image) if matches(box, b) and b.landmarks), None)
            if hit is not None:
                found.append((image, hit))
                truth.append(label)
        row = {"faces": len(scenes), "found": len(found)}
        for align in (False, True):
            crops = np.stack([preprocess_faces(img, [b], replace(spec, align=align))[0] for img, b in found])
            pred = classifier.predict_proba(crops).argmax(axis=1)
            row["accuracy_aligned" if align else "accuracy_as_cropped"] = float(np.mean(pred == np.array(truth)))
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200, help="composed scenes of each kind")
    parser.add_argument("--align-faces", type=int, default=600)
    parser.add_argument("--skip-mtcnn", action="store_true", help="leave out the slow MTCNN")
    args = parser.parse_args()

    info = get_model()
    classifier = load_classifier(info)
    spec = info.preprocessing
    names = ["yunet", "blazeface", "blazeface_full", "haar"] + ([] if args.skip_mtcnn else ["mtcnn"])
    detectors = {name: make_detector(name) for name in names}
    detectors["yunet_640 (before)"] = YuNetBefore()
    faces, labels = load_labelled_faces(limit=1200, seed=0)
    sparse = make_scenes(args.scenes, faces, seed=1, labels=labels)
    crowded = make_scenes(args.scenes, faces, seed=2, per_scene=(6, 12), sides=(32, 64), labels=labels)
    report: dict = {"model": info.name, "real_photos": {}, "scenes": {}, "speed": {}}
    sets = {"as taken (500x375)": 1.0, "shrunk to 320x240": 0.64, "enlarged to 24 MP": 12.0}
    for label, factor in sets.items():
        photos = real_photos(factor)
        report["real_photos"][label] = {
            n: photo_recall(d, photos) for n, d in detectors.items() if not (n == "mtcnn" and factor > 4)
        }
    for kind, scenes in (("sparse", sparse), ("crowded", crowded)):
        report["scenes"][kind] = {n: scene_quality(d, scenes, classifier, spec) for n, d in detectors.items()}
    for name in ("yunet", "yunet_640 (before)", "blazeface"):
        recognizer = EmotionRecognizer(classifier, detectors[name], spec, model_name=info.name)
        report["speed"][name] = {
            "photos_per_s_640x480": photos_per_second(recognizer, sparse),
            "photos_per_s_640x480_crowded": photos_per_second(recognizer, crowded),
        }
    live_options = {
        "yunet (photo settings)": make_detector("yunet"),
        "yunet (live: 320 px, no fine pass)": make_detector("yunet", work_size=320, small_faces=False),
        "blazeface": make_detector("blazeface"),
    }
    for name, detector in live_options.items():
        recognizer = EmotionRecognizer(classifier, detector, spec, model_name=info.name)
        report["speed"].setdefault(name, {})["live_ms_per_frame"] = live_ms(recognizer, sparse)
    report["alignment"] = alignment(classifier, spec, faces[: args.align_faces], labels[: args.align_faces])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

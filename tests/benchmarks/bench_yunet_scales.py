"""Why YuNet searches 640x480 photos at 800x600, enlarges at most 1.25x, and runs on ONNX Runtime.

    .venv/bin/python -m tests.benchmarks.bench_yunet_scales [--scenes 120]

- Recall on crowded scenes of FER-2013 *train* faces (6-12 faces of 32-64 px in 640x480; never
  test faces: this chose the setting) for one pass at each scale, by face size, with the detection
  time relative to scale 1.0.
- Face crops (a face filling the image) of 48-224 px, found as they are and enlarged to 640 px.
- One thread, one 640x640 input: ms per call on ONNX Runtime (the shipped file) and on OpenCV's
  `cv2.FaceDetectorYN` (upstream's file).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.detect import YuNetDetector, _suppress_overlaps
from tests.benchmarks.bench_detectors import PHOTOS
from tests.benchmarks.scenes import load_faces, make_scenes, matches
from tests.helpers import SHARED

UPSTREAM = PHOTOS.parents[1] / "models" / "yunet" / "yunet_n_640_640.onnx"


def train_faces(limit: int, seed: int = 5) -> list[np.ndarray]:
    paths = sorted(p for e in EMOTIONS for p in (SHARED / "train" / e).glob("*.jpg"))
    order = np.random.default_rng(seed).permutation(len(paths))[:limit]
    return [cv2.imread(str(paths[i]), cv2.IMREAD_GRAYSCALE) for i in order]


def scale_recall(detector: YuNetDetector, scenes, scale: float) -> tuple[float, dict[int, float], float]:
    hits, totals, start = {}, {}, time.perf_counter()
    for image, truth in scenes:
        found, used = _suppress_overlaps(detector._detect_at(image, scale)), set()
        for t in truth:
            size = min(t.w // 8, 7) * 8
            totals[size] = totals.get(size, 0) + 1
            j = next((j for j, f in enumerate(found) if j not in used and matches(t, f)), None)
            if j is not None:
                used.add(j)
                hits[size] = hits.get(size, 0) + 1
    seconds = time.perf_counter() - start
    by_size = {s: hits.get(s, 0) / totals[s] for s in sorted(totals)}
    return sum(hits.values()) / sum(totals.values()), by_size, seconds


def ms_per_call(detect, image: np.ndarray, calls: int = 30) -> float:
    for _ in range(3):
        detect(image)
    start = time.perf_counter()
    for _ in range(calls):
        detect(image)
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=120)
    args = parser.parse_args()
    detector = YuNetDetector()
    scenes = make_scenes(args.scenes, train_faces(1500), seed=11, per_scene=(6, 12), sides=(32, 64))
    print("crowded train-face scenes, one pass at each scale of 640x480:")
    base = None
    for scale in (1.0, 1.1, 1.2, 1.25, 1.5):
        total, by_size, seconds = scale_recall(detector, scenes, scale)
        base = base or seconds
        sizes = ", ".join(f"{s}-{s + 7} px {r:.0%}" for s, r in by_size.items())
        print(f"  x{scale} ({round(640 * scale)} px): recall {total:.1%} ({sizes}); time {seconds / base:.2f}x")
    faces = load_faces(200, seed=4)
    print(f"face crops found of {len(faces)}, as they are / enlarged to 640 px:")
    for side in (48, 96, 224):
        crops = [cv2.cvtColor(cv2.resize(f, (side, side)), cv2.COLOR_GRAY2BGR) for f in faces]
        as_is = sum(bool(detector._detect_at(c, 1.0)) for c in crops)
        enlarged = sum(bool(detector._detect_at(c, 640 / side)) for c in crops)
        print(f"  {side} px: {as_is} / {enlarged}")
    cv2.setNumThreads(1)
    image = cv2.resize(cv2.cvtColor(faces[0], cv2.COLOR_GRAY2BGR), (640, 640))
    onnx = YuNetDetector(threads=1)._nets[0]
    opencv = YuNetDetector(model_path=UPSTREAM)._nets[0]
    for round_ in (1, 2):
        print(
            f"one thread, 640x640, round {round_}: ONNX Runtime {ms_per_call(onnx.detect, image):.1f} ms, "
            f"OpenCV dnn {ms_per_call(opencv.detect, image):.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()

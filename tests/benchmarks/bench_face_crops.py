"""Faces that fill the image: how many FER-2013 crops the default detector finds at each size.

    .venv/bin/python -m tests.benchmarks.bench_face_crops [--faces 200]

Face-crop images (a face filling the frame, 48-480 px) and 640x480 close-ups (a 480 px crop with
mirrored sides) of FER-2013 test faces, for the default `yunet` and for YuNet as it ran before
2026-11-30 (upstream's file on OpenCV, photos never enlarged): the case that enlarging small
photos must not break.
"""

from __future__ import annotations

import argparse

import cv2

from fer_core.detect import make_detector
from tests.benchmarks.bench_detectors import YuNetBefore
from tests.benchmarks.scenes import load_faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=200)
    args = parser.parse_args()
    faces = load_faces(args.faces, seed=4)
    detectors = {"yunet": make_detector("yunet"), "yunet before": YuNetBefore()}
    sets = {f"{side}x{side} crop": [cv2.resize(f, (side, side)) for f in faces] for side in (48, 96, 224, 480)}
    sets["640x480 close-up"] = [
        cv2.copyMakeBorder(cv2.resize(f, (480, 480)), 0, 0, 80, 80, cv2.BORDER_REFLECT) for f in faces
    ]
    print(f"faces found of {len(faces)}")
    for name, images in sets.items():
        counts = {d: sum(bool(detector.detect(image)) for image in images) for d, detector in detectors.items()}
        print(f"{name}: " + ", ".join(f"{d} {n}" for d, n in counts.items()), flush=True)


if __name__ == "__main__":
    main()

"""Labelled test scenes for benchmarks: FER-2013 test faces composed into 640x480 frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.types import Box
from tests.helpers import SHARED


def load_labelled_faces(limit: int = 400, seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """Gray FER-2013 test faces, shuffled (all classes), with their class indices."""
    paths = sorted((p, i) for i, e in enumerate(EMOTIONS) for p in (SHARED / "test" / e).glob("*.jpg"))
    if not paths:
        raise SystemExit(f"FER-2013 test images not found under {SHARED / 'test'}")
    order = np.random.default_rng(seed).permutation(len(paths))[:limit]
    return [cv2.imread(str(paths[i][0]), cv2.IMREAD_GRAYSCALE) for i in order], [paths[i][1] for i in order]


def load_faces(limit: int = 400, seed: int = 0) -> list[np.ndarray]:
    """Gray FER-2013 test faces, shuffled (all classes)."""
    return load_labelled_faces(limit, seed)[0]


def make_scenes(
    n: int,
    faces: list[np.ndarray],
    seed: int = 0,
    size=(640, 480),
    per_scene: tuple[int, int] = (1, 3),
    sides: tuple[int, int] = (100, 170),
    labels: list[int] | None = None,
) -> list[tuple]:
    """n colour scenes with `per_scene` faces each (`sides` px wide, no overlap) and their true boxes.

    Faces are pasted in the order given. With `labels` (one per face), each scene is
    (image, boxes, box_labels) instead of (image, boxes).
    """
    rng = np.random.default_rng(seed)
    width, height = size
    scenes, k = [], 0
    for _ in range(n):
        base = rng.integers(40, 220, (height // 8, width // 8, 3), dtype=np.uint8)
        image = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
        image = cv2.GaussianBlur(image, (9, 9), 0)
        boxes: list[Box] = []
        box_labels: list[int] = []
        for _ in range(int(rng.integers(per_scene[0], per_scene[1] + 1))):
            side = int(rng.integers(sides[0], sides[1] + 1))
            for _attempt in range(30):
                x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
                box = Box(x, y, side, side)
                if all(box.iou(b) == 0 and _apart(box, b) for b in boxes):
                    break
            else:
                continue
            face = cv2.resize(faces[k % len(faces)], (side, side), interpolation=cv2.INTER_CUBIC)
            if labels is not None:
                box_labels.append(labels[k % len(faces)])
            k += 1
            image[y : y + side, x : x + side] = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
            boxes.append(box)
        scenes.append((image, boxes) if labels is None else (image, boxes, box_labels))
    return scenes


def _apart(a: Box, b: Box, gap: int = 10) -> bool:
    return a.x + a.w + gap < b.x or b.x + b.w + gap < a.x or a.y + a.h + gap < b.y or b.y + b.h + gap < a.y


def matches(truth: Box, found: Box) -> bool:
    """A detection counts when its centre lies in the true box and it covers a fair share of it."""
    cx, cy = found.x + found.w / 2, found.y + found.h / 2
    inside = truth.x <= cx <= truth.x + truth.w and truth.y <= cy <= truth.y + truth.h
    return inside and truth.iou(found) >= 0.25


def recall(scenes: list[tuple[np.ndarray, list[Box]]], detections: list[list[Box]]) -> tuple[float, float]:
    """(recall, false detections per image) of detections against the true boxes."""
    hits = total = false = 0
    for (_, truth, *_labels), found in zip(scenes, detections):
        used = set()
        for t in truth:
            total += 1
            j = next((j for j, f in enumerate(found) if j not in used and matches(t, f)), None)
            if j is not None:
                used.add(j)
                hits += 1
        false += len(found) - len(used)
    return hits / max(total, 1), false / max(len(scenes), 1)


def save_examples(scenes, folder: Path, count: int = 3) -> None:
    """Write a few scenes as JPEG for a look."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (image, _) in enumerate(scenes[:count]):
        cv2.imwrite(str(folder / f"scene{i}.jpg"), image)

"""Drawing results onto images (kept apart from processing)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.types import Box

COLORS_BGR = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (0, 200, 255),
    "neutral": (180, 180, 180),
    "sad": (200, 120, 40),
    "surprise": (230, 200, 0),
}
"""One colour per emotion, used for boxes, bars and charts."""

COLORS_HEX = {name: f"#{b[2]:02x}{b[1]:02x}{b[0]:02x}" for name, b in COLORS_BGR.items()}


Rect = tuple[int, int, int, int]
"""x, y, width, height."""


def _label_text(emotion: str, confidence: float | None, track_id: int | None) -> str:
    figure = f"{confidence:.0%}" if confidence is not None else "(corrected)"
    return f"{emotion} {figure}" + (f"  #{track_id}" if track_id is not None else "")


def _label_size(shape: tuple, box: Box, label: str) -> tuple[int, int, float, int]:
    """A label's rectangle size, text scale and text height: scaled to its face, never wider than
    the image (a long label on a small photo is written smaller rather than cut)."""
    width = shape[1]
    scale = max(0.45, min(1.2, box.w / 220))
    while True:
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        if tw + 8 <= width or scale <= 0.3:
            return tw + 8, th + base + 6, scale, th
        scale *= 0.85


def _label_place(shape: tuple, box: Box, size: tuple[int, int], taken: list[Rect]) -> Rect:
    """Where a face's label goes, inside the image and off the labels already drawn: above the
    box, else below it, else inside its top edge, else higher up; where every place is taken,
    the one covering the least."""
    height, width = shape[:2]
    w, h = min(size[0], width), min(size[1], height)
    candidates = [
        (box.x, box.y - h),
        (box.x, box.y + box.h),
        (box.x, box.y),
        *((box.x, box.y - h * k) for k in range(2, 5)),
        *((box.x, box.y + box.h + h * (k - 1)) for k in range(2, 5)),
    ]
    best, best_cover = None, None
    for x, y in candidates:
        rect = (min(max(0, x), width - w), min(max(0, y), height - h), w, h)
        cover = sum(_overlap(rect, t) for t in taken)
        if cover == 0:
            return rect
        if best_cover is None or cover < best_cover:
            best, best_cover = rect, cover
    return best


def draw_face(
    image: np.ndarray,
    box: Box,
    emotion: str,
    confidence: float | None,
    probabilities: np.ndarray | None = None,
    track_id: int | None = None,
) -> None:
    """Draw one face's box, label and (optionally) a bar per emotion, in place.

    `confidence` None marks a label a person gave (a correction): it is drawn without a figure.
    With several faces use `annotate`, which keeps each face's bars off the other faces.
    """
    label = _draw_box_and_label(image, box, emotion, _label_text(emotion, confidence, track_id))
    if probabilities is not None:
        _draw_bars(image, box, probabilities, _bars_place(image.shape, box, label, []))


def _draw_box(image: np.ndarray, box: Box, emotion: str) -> None:
    color = COLORS_BGR.get(emotion, (255, 255, 255))
    height, width = image.shape[:2]
    thickness = max(2, round(min(width, height) / 300))
    cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), color, thickness)


def _draw_label(image: np.ndarray, box: Box, emotion: str, label: str, taken: list[Rect]) -> Rect:
    """Draw a face's label where it covers no label in `taken` (see `_label_place`); returns its place."""
    w, h, scale, th = _label_size(image.shape, box, label)
    x, top, w, h = _label_place(image.shape, box, (w, h), taken)
    cv2.rectangle(image, (x, top), (x + w, top + h), COLORS_BGR.get(emotion, (255, 255, 255)), -1)
    cv2.putText(image, label, (x + 4, top + th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return x, top, w, h


def _draw_box_and_label(image: np.ndarray, box: Box, emotion: str, label: str) -> Rect:
    _draw_box(image, box, emotion)
    return _draw_label(image, box, emotion, label, [])


def _bar_height(box: Box) -> int:
    return max(4, box.h // 16)


def _overlap(a: Rect, b: Rect) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def _bars_place(shape: tuple, box: Box, own_label: Rect, obstacles: list[Rect]) -> Rect:
    """Where a face's bars go, kept in the image and off the face itself, its label and
    `obstacles` (other faces, labels and bars): below the box, else beside it (right, left),
    else above its label, else the free place nearest the face; where no place is free, the one
    covering the least (in the end the lower part of the face itself)."""
    height, width = shape[:2]
    w, h = min(box.w, width), min(_bar_height(box) * len(EMOTIONS), height)
    obstacles = [(box.x, box.y, box.w, box.h), own_label, *obstacles]
    for x, y in (
        (box.x, box.y + box.h + 4),
        (box.x + box.w + 4, box.y),
        (box.x - w - 4, box.y),
        (box.x, own_label[1] - h - 2),
    ):
        rect = (min(max(0, x), width - w), min(max(0, y), height - h), w, h)
        if not any(_overlap(rect, o) for o in obstacles):
            return rect
    # every place by the face is taken: the free (or least covering) place nearest to it
    step = max(4, h // 8)
    xs, ys = np.meshgrid(np.arange(0, width - w + 1, step), np.arange(0, height - h + 1, step))
    cover = np.zeros(xs.shape, np.int64)
    for ox, oy, ow, oh in obstacles:
        across = np.clip(np.minimum(xs + w, ox + ow) - np.maximum(xs, ox), 0, None)
        down = np.clip(np.minimum(ys + h, oy + oh) - np.maximum(ys, oy), 0, None)
        cover += across * down
    distance = np.hypot(xs + w / 2 - (box.x + box.w / 2), ys + h / 2 - (box.y + box.h + h / 2))
    best = np.unravel_index(np.lexsort((distance.ravel(), cover.ravel()))[0], xs.shape)
    return int(xs[best]), int(ys[best]), w, h


def _draw_bars(image: np.ndarray, box: Box, probabilities: np.ndarray, place: Rect) -> None:
    bar_h = _bar_height(box)
    x, y, w, _ = place
    scale = (bar_h - 2) / 22  # text as tall as a bar
    for name, p in zip(EMOTIONS, probabilities):
        length = int(w * float(p))
        cv2.rectangle(image, (x, y), (x + w, y + bar_h - 1), (40, 40, 40), -1)
        cv2.rectangle(image, (x, y), (x + length, y + bar_h - 1), COLORS_BGR[name], -1)
        if bar_h >= 9:  # the class name on its bar, when there is room to read it
            origin = (x + 2, y + bar_h - 2)
            cv2.putText(image, name[:3], origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += bar_h


def annotate(image: np.ndarray, faces: Sequence, show_probabilities: bool = False) -> np.ndarray:
    """A copy of `image` with every face (FaceResult or TrackedFace) drawn on it.

    Boxes are drawn first, then each label where it covers no other label and is not cut by the
    image's edge (`_label_place`), then each face's bars where they cover no other face, label
    or bars (see `_bars_place`), so crowded faces stay readable.
    """
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for face in faces:
        _draw_box(out, face.box, face.emotion)
    taken: list[tuple[Rect, Rect]] = []  # (box, label) of each face
    labels: list[Rect] = []
    for face in faces:  # each label off the labels before it, inside the image
        label = _label_text(face.emotion, face.confidence, getattr(face, "track_id", None))
        label_rect = _draw_label(out, face.box, face.emotion, label, labels)
        labels.append(label_rect)
        taken.append(((face.box.x, face.box.y, face.box.w, face.box.h), label_rect))
    if show_probabilities:
        placed: list[Rect] = []
        for i, face in enumerate(faces):
            others = [r for j, pair in enumerate(taken) if j != i for r in pair]
            place = _bars_place(out.shape, face.box, taken[i][1], others + placed)
            _draw_bars(out, face.box, face.probabilities, place)
            placed.append(place)
    return out


def thumbnail(image: np.ndarray, max_side: int = 256) -> np.ndarray:
    """A copy shrunk so its longer side is at most `max_side`."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image.copy()
    return cv2.resize(
        image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )

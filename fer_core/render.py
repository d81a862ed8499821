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


def _label_layout(box: Box, label: str) -> tuple[Rect, float, int]:
    """Where a face's label goes (its filled rectangle), its text scale and text height."""
    scale = max(0.45, min(1.2, box.w / 220))
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    top = max(0, box.y - th - base - 6)
    return (box.x, top, tw + 8, th + base + 6), scale, th


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


def _draw_box_and_label(image: np.ndarray, box: Box, emotion: str, label: str) -> Rect:
    color = COLORS_BGR.get(emotion, (255, 255, 255))
    height, width = image.shape[:2]
    thickness = max(2, round(min(width, height) / 300))
    cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), color, thickness)
    (x, top, w, h), scale, th = _label_layout(box, label)
    cv2.rectangle(image, (x, top), (x + w, top + h), color, -1)
    cv2.putText(image, label, (x + 4, top + th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return x, top, w, h


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

    Boxes and labels are drawn first; then each face's bars go where they cover no other
    face, label or bars (see `_bars_place`), so crowded faces stay readable.
    """
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    taken: list[tuple[Rect, Rect]] = []  # (box, label) of each face
    for face in faces:
        label = _label_text(face.emotion, face.confidence, getattr(face, "track_id", None))
        label_rect = _draw_box_and_label(out, face.box, face.emotion, label)
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

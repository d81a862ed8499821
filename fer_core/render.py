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
    """
    color = COLORS_BGR.get(emotion, (255, 255, 255))
    height, width = image.shape[:2]
    thickness = max(2, round(min(width, height) / 300))
    cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), color, thickness)
    figure = f"{confidence:.0%}" if confidence is not None else "(corrected)"
    label = f"{emotion} {figure}" + (f"  #{track_id}" if track_id is not None else "")
    scale = max(0.45, min(1.2, box.w / 220))
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    top = max(0, box.y - th - base - 6)
    cv2.rectangle(image, (box.x, top), (box.x + tw + 8, top + th + base + 6), color, -1)
    cv2.putText(image, label, (box.x + 4, top + th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    if probabilities is not None:
        _draw_bars(image, box, probabilities)


def _draw_bars(image: np.ndarray, box: Box, probabilities: np.ndarray) -> None:
    height = image.shape[0]
    bar_h = max(4, box.h // 16)
    y = box.y + box.h + 4
    if y + bar_h * len(EMOTIONS) > height:
        y = max(0, box.y + box.h - bar_h * len(EMOTIONS))
    scale = (bar_h - 2) / 22  # text as tall as a bar
    for name, p in zip(EMOTIONS, probabilities):
        length = int(box.w * float(p))
        cv2.rectangle(image, (box.x, y), (box.x + box.w, y + bar_h - 1), (40, 40, 40), -1)
        cv2.rectangle(image, (box.x, y), (box.x + length, y + bar_h - 1), COLORS_BGR[name], -1)
        if bar_h >= 9:  # the class name on its bar, when there is room to read it
            origin = (box.x + 2, y + bar_h - 2)
            cv2.putText(image, name[:3], origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += bar_h


def annotate(image: np.ndarray, faces: Sequence, show_probabilities: bool = False) -> np.ndarray:
    """A copy of `image` with every face (FaceResult or TrackedFace) drawn on it."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for face in faces:
        draw_face(
            out,
            face.box,
            face.emotion,
            face.confidence,
            face.probabilities if show_probabilities else None,
            getattr(face, "track_id", None),
        )
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

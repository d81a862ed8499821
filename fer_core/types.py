"""Plain result types shared by every part of fer_core."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fer_core.classes import EMOTIONS


@dataclass(frozen=True)
class Box:
    """A face box in pixels: top-left corner, width and height.

    Attributes:
        score: the detector's confidence.
        landmarks: five (x, y) points in pixels when the detector gives them (YuNet): right
            eye, left eye, nose tip, right and left mouth corners (the person's right/left).
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None

    def as_fractions(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The box as fractions of the image's width and height."""
        return (self.x / width, self.y / height, self.w / width, self.h / height)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0


@dataclass
class FaceResult:
    """One face found in an image, with its emotion probabilities.

    Attributes:
        box: the face in pixels.
        box_fraction: (x, y, w, h) as fractions of image width and height.
        probabilities: 7 floats in EMOTIONS order, summing to 1.
        emotion: the most probable emotion.
        confidence: its probability.
        flags: quality flags such as "small_face" and "low_confidence".
    """

    box: Box
    box_fraction: tuple[float, float, float, float]
    probabilities: np.ndarray
    emotion: str
    confidence: float
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "box": {"x": self.box.x, "y": self.box.y, "w": self.box.w, "h": self.box.h},
            "face_px": min(self.box.w, self.box.h),
            "detector_score": round(self.box.score, 4),
            "box_fraction": [round(v, 6) for v in self.box_fraction],
            "probabilities": {name: round(float(p), 6) for name, p in zip(EMOTIONS, self.probabilities)},
            "emotion": self.emotion,
            "confidence": round(self.confidence, 6),
            "flags": list(self.flags),
        }

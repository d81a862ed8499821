"""What every single-network classifier shares: test-time views, batching, a lock, calibrated softmax."""

from __future__ import annotations

import threading

import numpy as np

from fer_core.classes import NUM_CLASSES
from fer_core.metrics import softmax
from fer_core.tta import check_tta_mode, tta_views

BATCH_STEP = 64
"""Faces per call of the runtime: larger batches gain nothing and cost memory."""


def checked_crops(crops: np.ndarray, crop_shape: tuple[int, ...]) -> np.ndarray:
    """`crops` as an array (N, *crop_shape).

    Raises:
        ValueError: crops of another shape.
    """
    crops = np.asarray(crops)
    if crops.shape[1:] != crop_shape:
        raise ValueError(
            f"Expected crops of shape (N, {', '.join(map(str, crop_shape))}). Received: shape={crops.shape}"
        )
    return crops


class CropClassifier:
    """Base of the runtimes: turns uint8 crops (N, *crop_shape) into logits (N, 7).

    Subclasses set `input_size` and `crop_shape` and implement `_run_chunk` (at most BATCH_STEP
    crops of one view, runtime-specific input conversion included). A lock makes one instance
    safe to share between the video thread and pages.

    Args:
        temperature: softmax temperature from calibration (1.0 = none).
        tta: test-time augmentation, a key of `TTA_MODES`; the logits of all views are averaged.
    """

    input_size: int
    crop_shape: tuple[int, ...]

    def __init__(self, temperature: float = 1.0, tta: str = "none"):
        self.temperature = float(temperature)
        self.tta = check_tta_mode(tta)
        self._lock = threading.Lock()

    def _run_chunk(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits (N, 7) for uint8 crops (N, *crop_shape).

        Raises:
            ValueError: crops of another shape.
        """
        crops = checked_crops(crops, self.crop_shape)
        if len(crops) == 0:
            return np.empty((0, NUM_CLASSES), np.float32)
        views = tta_views(crops, self.tta)
        flat = views.reshape(-1, *crops.shape[1:])
        with self._lock:
            out = np.concatenate([self._run_chunk(flat[i : i + BATCH_STEP]) for i in range(0, len(flat), BATCH_STEP)])
        return out.reshape(len(views), -1, NUM_CLASSES).mean(axis=0)

    def predict_proba(self, crops: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 7) in EMOTIONS order."""
        return softmax(self.logits(crops), self.temperature)

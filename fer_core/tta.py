"""Test-time augmentation: an inference policy that classifies several views of each face
and averages their logits (the classifier applies it; preprocessing makes the one crop).

Modes: "none" (1 view), "flip" (the face and its mirror image) and "crops" (the face and four
copies shifted by 6% of its side, each also mirrored: 10 views). A temperature is fitted per
mode (see the model card's calibration), since averaged logits are softer.
"""

from __future__ import annotations

import numpy as np

TTA_MODES: dict[str, str] = {
    "none": "the face as cropped (1 view)",
    "flip": "averaged with its mirror image (2 views)",
    "crops": "the face and four crops shifted by 6% of its side, each also mirrored (10 views)",
}


def _shifted(crops: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Crops moved by (dx, dy) pixels, the uncovered border mirrored as Keras' RandomTranslation fills it."""
    pad = max(abs(dx), abs(dy))
    padded = np.pad(crops, ((0, 0), (pad, pad), (pad, pad), *[(0, 0)] * (crops.ndim - 3)), mode="symmetric")
    size_y, size_x = crops.shape[1:3]
    return padded[:, pad - dy : pad - dy + size_y, pad - dx : pad - dx + size_x]


def check_tta_mode(mode: str) -> str:
    """Return `mode` if it is a key of TTA_MODES.

    Raises:
        ValueError: unknown mode.
    """
    if mode not in TTA_MODES:
        raise ValueError(f"Unknown test-time augmentation. Expected one of {sorted(TTA_MODES)}. Received: {mode!r}")
    return mode


def tta_views(crops: np.ndarray, mode: str) -> np.ndarray:
    """The test-time-augmentation views of uint8 crops (N, S, S[, C]): an array (V, N, S, S[, C]).

    Raises:
        ValueError: unknown mode.
    """
    check_tta_mode(mode)
    views = [crops]
    if mode == "crops":
        step = max(1, round(0.06 * crops.shape[1]))
        views += [_shifted(crops, dx, dy) for dx, dy in ((-step, 0), (step, 0), (0, -step), (0, step))]
    if mode != "none":
        views += [v[:, :, ::-1] for v in views]
    return np.stack(views)


def view_count(mode: str) -> int:
    """How many views `tta_views` makes of each face in `mode`."""
    return len(tta_views(np.zeros((1, 8, 8), np.uint8), mode))

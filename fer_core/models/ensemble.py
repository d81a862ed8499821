"""Ensembles: several models' logits, each divided by its member temperature, averaged with weights.

Members may be of any runtime and crop faces their own way: the ensemble takes one crop per
distinct way (a `CompositePreprocessing` when there are several), and within one way crops at the
smallest size, resized for larger members (equal to a member's own crop only where the source
image is no larger than the smallest size).
"""

from __future__ import annotations

import numpy as np

from fer_core.classes import NUM_CLASSES
from fer_core.metrics import softmax
from fer_core.models.base import CropClassifier, checked_crops
from fer_core.preprocess import combine_specs, convert_crops
from fer_core.tta import check_tta_mode


class EnsembleClassifier:
    """Weighted average of member classifiers' logits, each divided by its member temperature.

    Each member applies the TTA mode itself and gets the crops of its own kind.

    Args:
        members: classifiers, each with a `spec` (its preprocessing).
        weights: one non-negative weight per member (not all zero).
        temperature: softmax temperature of the averaged logits.
        tta: test-time augmentation for every member.
        member_temperatures: each member's logits are divided by its own before averaging, so that
            members of different confidence count as their weights say (1.0 each by default).
    """

    def __init__(
        self,
        members: list[CropClassifier],
        weights: list[float],
        temperature: float = 1.0,
        tta: str = "none",
        member_temperatures: list[float] | None = None,
    ):
        if not members or len(weights) != len(members) or sum(weights) <= 0 or min(weights) < 0:
            raise ValueError(f"Expected one weight >= 0 per member, not all 0. Received: weights={weights}")
        temps = member_temperatures or [1.0] * len(members)
        if len(temps) != len(members) or min(temps) <= 0:
            raise ValueError(f"Expected one temperature > 0 per member. Received: member_temperatures={temps}")
        self.members = members
        self.weights = np.asarray(weights, np.float64) / float(sum(weights))
        self.member_temperatures = np.asarray(temps, np.float64)
        self.temperature = float(temperature)
        self.tta = check_tta_mode(tta)
        self.spec = combine_specs([m.spec for m in members])
        self.input_size, self.crop_shape = self.spec.size, self.spec.crop_shape

    def member_logits(self, crops: np.ndarray) -> list[np.ndarray]:
        """Every member's own logits (N, 7) for the ensemble's crops (not divided by temperatures)."""
        return [m.logits(convert_crops(crops, self.spec, m.spec)) for m in self.members]

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Weighted mean of the members' tempered logits (N, 7)."""
        crops = checked_crops(crops, self.crop_shape)
        if len(crops) == 0:
            return np.empty((0, NUM_CLASSES), np.float32)
        return mix_logits(self.member_logits(crops), self.weights, self.member_temperatures)

    def predict_proba(self, crops: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 7) in EMOTIONS order."""
        return softmax(self.logits(crops), self.temperature)

    def multiply_adds(self) -> int:
        """Multiply-adds for one view of one face: every member's that has a weight (LiteRT members only)."""
        return sum(
            m.multiply_adds() for m, w in zip(self.members, self.weights) if w > 0 and hasattr(m, "multiply_adds")
        )


def mix_logits(member_logits: list[np.ndarray], weights, member_temperatures) -> np.ndarray:
    """Sum over members of weight * logits / member temperature, as float32 (N, 7)."""
    parts = [w * x / t for x, w, t in zip(member_logits, weights, member_temperatures) if w > 0]
    return np.sum(parts, axis=0).astype(np.float32)


def fit_weights(
    member_logits: list[np.ndarray], labels: np.ndarray, steps: int = 300, sample_weight: np.ndarray | None = None
) -> list[float]:
    """Non-negative member weights (summing to 1) that minimise the log-loss of the averaged logits.

    Fitted on a validation split, never on a test set. Plain gradient descent on softmax-
    parametrised weights: few parameters, so no optimiser library is needed. `sample_weight`
    (N,) weighs faces, e.g. so that two sets of different sizes count alike.
    """
    stack = np.stack([np.asarray(x, np.float64) for x in member_logits])  # (M, N, 7)
    faces = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    onehot = np.eye(NUM_CLASSES)[labels] * (faces / faces.mean())[:, None]
    faces = faces / faces.mean()
    theta = np.zeros(len(member_logits))
    for _ in range(steps):
        w = np.exp(theta - theta.max())
        w /= w.sum()
        mixed = np.tensordot(w, stack, axes=1)
        probs = softmax(mixed)
        grad_mixed = (probs * faces[:, None] - onehot) / len(labels)  # d loss / d mixed logits
        grad_w = np.einsum("mnk,nk->m", stack, grad_mixed)
        theta -= 5.0 * w * (grad_w - np.dot(w, grad_w))  # chain rule through the softmax of theta
    w = np.exp(theta - theta.max())
    return [round(float(v), 4) for v in w / w.sum()]

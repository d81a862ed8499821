"""Evaluating a classifier on labelled face crops through the inference path."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fer_core.classifier import EmotionClassifier
from fer_core.datasets import LabeledFaces
from fer_core.metrics import classification_metrics


def evaluate_classifier(
    classifier: EmotionClassifier,
    data: LabeledFaces,
    batch: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict, np.ndarray]:
    """Metrics of `classifier` on `data`, and the probabilities behind them.

    Returns:
        (metrics dict as from `classification_metrics`, probabilities (N, 7)).

    Raises:
        ValueError: the set is empty.
    """
    if len(data) == 0:
        raise ValueError("The labelled set holds no readable images.")
    parts = []
    for start in range(0, len(data), batch):
        parts.append(classifier.predict_proba(data.images[start : start + batch]))
        if progress:
            progress(min(start + batch, len(data)), len(data))
    probs = np.concatenate(parts)
    return classification_metrics(data.labels, probs), probs

"""Classification metrics computed once and returned as plain, JSON-ready data."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fer_core.classes import EMOTIONS, NUM_CLASSES


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits divided by `temperature`."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence over equal-width bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> list[dict]:
    """Per-bin mean confidence, accuracy and count, for a reliability diagram."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": int(mask.sum()),
                "confidence": float(confidence[mask].mean()) if mask.any() else None,
                "accuracy": float(correct[mask].mean()) if mask.any() else None,
            }
        )
    return rows


def _without_class(y_true: np.ndarray, y_pred: np.ndarray, left_out: int) -> dict | None:
    """Accuracy and macro-F1 on the faces not labelled `left_out` (a prediction of it still counts as
    an error; macro-F1 over the classes present), or None when no face is left."""
    keep = y_true != left_out
    if not keep.any():
        return None
    _, _, f1, support = precision_recall_fscore_support(
        y_true[keep], y_pred[keep], labels=list(range(NUM_CLASSES)), zero_division=0
    )
    return {
        "accuracy": float((y_pred[keep] == y_true[keep]).mean()),
        "macro_f1": float(f1[support > 0].mean()),
        "n": int(keep.sum()),
    }


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, macro-F1, per-class figures, confusion matrix and ECE.

    Args:
        y_true: integer labels (N,) indexing EMOTIONS.
        probs: probabilities (N, 7) in EMOTIONS order.

    Returns:
        A dict with keys accuracy, macro_f1, without_disgust (accuracy and macro-F1 on the faces
        not labelled disgust, whose labels are often noise in sets of real photos), per_class,
        confusion_matrix, classes, n, ece.
        Classes absent from y_true have support 0 and are left out of macro-F1.

    Raises:
        ValueError: shapes disagree or there are no samples.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != NUM_CLASSES or len(y_true) != len(probs):
        raise ValueError(
            f"Expected labels (N,) and probabilities (N, {NUM_CLASSES}). "
            f"Received: y_true.shape={y_true.shape}, probs.shape={probs.shape}"
        )
    if len(y_true) == 0:
        raise ValueError("Cannot compute metrics on an empty set. Received: n=0")
    y_pred = probs.argmax(axis=1)
    labels = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = support > 0
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(EMOTIONS)
    }
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(f1[present].mean()),
        "without_disgust": _without_class(y_true, y_pred, EMOTIONS.index("disgust")),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(EMOTIONS),
        "n": int(len(y_true)),
        "ece": expected_calibration_error(y_true, probs),
    }


def fit_temperature(y_true: np.ndarray, logits: np.ndarray) -> float:
    """Temperature that minimises negative log-likelihood on held-out logits (grid + refine)."""
    y_true = np.asarray(y_true, dtype=np.int64)

    def nll(t: float) -> float:
        p = softmax(logits, t)
        return float(-np.log(np.clip(p[np.arange(len(y_true)), y_true], 1e-12, None)).mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    best = min(grid, key=nll)
    fine = np.linspace(best * 0.9, best * 1.1, 41)
    return float(min(fine, key=nll))

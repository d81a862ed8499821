"""The model layer: runtimes (LiteRT, ONNX Runtime), ensembles, and one loader from card to classifier.

It depends on the registry, preprocessing and metrics below it and on nothing above: measuring a
model for its card happens in `fer_core.evaluation` and `fer_core.ensemble`.
"""

from __future__ import annotations

from fer_core.models.base import CropClassifier
from fer_core.models.ensemble import EnsembleClassifier
from fer_core.models.litert import LiteRTClassifier
from fer_core.models.onnx import OnnxClassifier
from fer_core.registry import ModelError, ModelInfo, get_model

Classifier = CropClassifier | EnsembleClassifier
"""Anything `load_classifier` gives: `logits`, `predict_proba`, `spec`, `crop_shape`, `temperature`, `tta`."""

RUNTIMES = ("litert", "onnx")

__all__ = [
    "Classifier",
    "CropClassifier",
    "EnsembleClassifier",
    "LiteRTClassifier",
    "OnnxClassifier",
    "load_classifier",
]


def load_classifier(info: ModelInfo | str | None = None, tta: str = "none", num_threads: int = 1) -> Classifier:
    """The classifier a registered model's card describes (the active model by default).

    Checks the card and every weights file's sha256 first.

    Raises:
        ModelError: no such model, a bad card, a missing, changed or unloadable weights file, or an
            unknown runtime.
    """
    if not isinstance(info, ModelInfo):
        info = get_model(info)
    if info.is_ensemble:
        members = info.members()
        classifiers = [load_classifier(m, tta, num_threads) for m, _ in members]
        temps = [float(entry.get("temperature", 1.0)) for entry in info.card["members"]]
        return EnsembleClassifier(classifiers, [w for _, w in members], info.temperature_for(tta), tta, temps)
    runtime = info.runtime
    path = info.verify()
    if runtime == "litert":
        return LiteRTClassifier(path, info.temperature_for(tta), tta, num_threads, spec=info.preprocessing)
    if runtime == "onnx":
        norm = info.card.get("input", {})
        return OnnxClassifier(
            path,
            info.preprocessing,
            norm.get("mean", 0.0),
            norm.get("std", 1.0),
            norm.get("layout", "NCHW"),
            info.temperature_for(tta),
            tta,
            num_threads,
        )
    raise ModelError(f"{info.folder / 'card.json'}: unknown runtime {runtime!r}; expected one of {RUNTIMES}")

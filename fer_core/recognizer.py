"""The inference pipeline: image -> faces -> crops -> classifier -> FaceResult records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.detect import DEFAULT_DETECTOR, FaceDetector, make_detector
from fer_core.models import Classifier, load_classifier
from fer_core.preprocess import Preprocessing, preprocess_faces
from fer_core.registry import ModelInfo, get_model
from fer_core.types import Box, FaceResult

SMALL_FACE_PX = 48
"""Faces narrower than this (the model's input side) are flagged "small_face"."""

LOW_CONFIDENCE = 0.4
"""Top-class probability under this is flagged "low_confidence"."""


class EmotionRecognizer:
    """Finds faces and labels each with its emotion.

    Args:
        classifier: the per-face classifier.
        detector: face detector; None gives the default (DEFAULT_DETECTOR).
        spec: preprocessing the classifier was trained with.
        low_confidence: threshold for the "low_confidence" flag.
        model_name: name shown in results and exports.
    """

    def __init__(
        self,
        classifier: Classifier,
        detector: FaceDetector | None = None,
        spec: Preprocessing = Preprocessing(),
        low_confidence: float = LOW_CONFIDENCE,
        model_name: str = "",
    ):
        self.classifier = classifier
        self.detector = detector or make_detector(DEFAULT_DETECTOR)
        self.spec = spec
        self.low_confidence = low_confidence
        self.model_name = model_name

    @classmethod
    def from_registry(
        cls,
        model: str | ModelInfo | None = None,
        detector: str = DEFAULT_DETECTOR,
        tta: str = "none",
        **detector_options,
    ) -> EmotionRecognizer:
        """Build from a registered model (default: the active one) and a detector name.

        Raises:
            ModelError: the model is missing or fails its checks.
            DetectorError: the detector cannot be built.
        """
        info = model if isinstance(model, ModelInfo) else get_model(model)
        classifier = load_classifier(info, tta=tta)
        return cls(classifier, make_detector(detector, **detector_options), info.preprocessing, model_name=info.name)

    def results_for(self, image_shape: tuple[int, ...], boxes: Sequence[Box], probs: np.ndarray) -> list[FaceResult]:
        """FaceResult records for boxes and their probabilities."""
        height, width = image_shape[:2]
        results = []
        for box, p in zip(boxes, probs):
            top = int(np.argmax(p))
            confidence = float(p[top])
            flags = []
            if min(box.w, box.h) < SMALL_FACE_PX:
                flags.append("small_face")
            if confidence < self.low_confidence:
                flags.append("low_confidence")
            results.append(FaceResult(box, box.as_fractions(width, height), p, EMOTIONS[top], confidence, flags))
        return results

    def classify_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> list[FaceResult]:
        """Classify given face boxes of one image (no detection)."""
        if not boxes:
            return []
        probs = self.classifier.predict_proba(preprocess_faces(image, list(boxes), self.spec))
        return self.results_for(image.shape, boxes, probs)

    def analyze(self, image: np.ndarray, min_face: int | None = None) -> list[FaceResult]:
        """All faces in one BGR (or gray) image with their emotions; [] when there is none.

        `min_face` (pixels) overrides the detector's smallest face for this call only.
        """
        return self.classify_boxes(image, self.detector.detect(image, min_face=min_face))

    def find_faces(self, image: np.ndarray, min_face: int | None = None) -> FoundFaces:
        """Detect and crop the faces of one image; the image itself can be dropped afterwards.

        Keeping only the small crops is what lets a batch of big photos be labelled with one
        decoded photo in memory per worker (see fer_core.labeling).
        """
        boxes = self.detector.detect(image, min_face=min_face)
        crops = preprocess_faces(image, boxes, self.spec) if boxes else _no_crops(self.spec.crop_shape)
        return FoundFaces(tuple(image.shape[:2]), boxes, crops)

    def classify_found(self, found: Sequence[FoundFaces]) -> list[list[FaceResult]]:
        """FaceResults for faces found in many images, classified in one batch."""
        crops = [f.crops for f in found if f.boxes]
        if not crops:
            return [[] for _ in found]
        probs = self.classifier.predict_proba(np.concatenate(crops))
        out, start = [], 0
        for f in found:
            out.append(self.results_for(f.shape, f.boxes, probs[start : start + len(f.boxes)]))
            start += len(f.boxes)
        return out

    def analyze_many(self, images: Sequence[np.ndarray], min_face: int | None = None) -> list[list[FaceResult]]:
        """Like `analyze` for many images, with every face of every image in one classifier batch."""
        return self.classify_found([self.find_faces(image, min_face) for image in images])


def _no_crops(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty((0, *shape), np.uint8)


@dataclass(frozen=True)
class FoundFaces:
    """The faces of one image, ready to classify: image shape (h, w), boxes, model-input crops."""

    shape: tuple[int, int]
    boxes: list[Box]
    crops: np.ndarray


@dataclass(frozen=True)
class RecognizerSpec:
    """What it takes to build a recognizer in another process: a model, a detector, a TTA mode.

    The registry is found as in this process (FER_MODELS_DIR is inherited).
    """

    model: str | None = None
    detector: str = DEFAULT_DETECTOR
    tta: str = "none"

    @classmethod
    def of(cls, recognizer: EmotionRecognizer) -> RecognizerSpec:
        """The spec of an existing recognizer (its model, its detector's name, its TTA mode)."""
        return cls(
            recognizer.model_name or None, recognizer.detector.name, getattr(recognizer.classifier, "tta", "none")
        )

    def build(self) -> EmotionRecognizer:
        """A new recognizer (loads the model and the detector)."""
        return EmotionRecognizer.from_registry(self.model, detector=self.detector, tta=self.tta)

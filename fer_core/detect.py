"""Face detection behind one interface, with several backends.

- "haar": OpenCV's Haar cascade on a downscaled frame; fast, the live default.
- "mtcnn": the `mtcnn` package (weights ship with it); slower, more accurate on photos.
- "yunet": OpenCV's FaceDetectorYN, only when the user supplies its ONNX model file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_core.preprocess import to_gray
from fer_core.types import Box


class DetectorError(RuntimeError):
    """A detector cannot be built; the message says what is missing."""


class FaceDetector(Protocol):
    """Anything that finds faces in a BGR image."""

    name: str

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in pixels of `image`, largest first; [] when there is no face."""


def _sort_largest_first(boxes: list[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


class HaarDetector:
    """OpenCV Haar cascade, run on a copy scaled to `detect_width` for speed.

    Args:
        min_face: smallest face side to report, in pixels of the original image.
        detect_width: frames wider than this are shrunk before detection.
        min_neighbors: cascade strictness (higher = fewer false faces).
    """

    name = "haar"

    def __init__(self, min_face: int = 40, detect_width: int = 320, min_neighbors: int = 5, scale_factor: float = 1.15):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorError(f"{path}: Haar cascade could not be loaded")
        self.min_face = min_face
        self.detect_width = detect_width
        self.min_neighbors = min_neighbors
        self.scale_factor = scale_factor

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = to_gray(image)
        height, width = gray.shape
        scale = min(1.0, self.detect_width / width) if self.detect_width else 1.0
        small = (
            cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
            if scale < 1
            else gray
        )
        small = cv2.equalizeHist(small)
        min_side = max(12, int(self.min_face * scale))
        found = self._cascade.detectMultiScale(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        boxes = [Box(int(x / scale), int(y / scale), int(w / scale), int(h / scale)) for (x, y, w, h) in found]
        return _sort_largest_first(boxes)


class MTCNNDetector:
    """MTCNN from the `mtcnn` package (TensorFlow); the accurate photo detector.

    Args:
        min_face: smallest face side to report, in pixels.
        min_confidence: drop detections scored lower than this.
    """

    name = "mtcnn"

    def __init__(self, min_face: int = 20, min_confidence: float = 0.9):
        try:
            from mtcnn import MTCNN
        except ImportError as e:
            raise DetectorError("the mtcnn package is not installed (pip install mtcnn)") from e
        self._mtcnn = MTCNN(device="CPU:0")
        self._lock = threading.Lock()
        self.min_face = min_face
        self.min_confidence = min_confidence

    def detect(self, image: np.ndarray) -> list[Box]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        rgb = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
        with self._lock:
            found = self._mtcnn.detect_faces(rgb, min_face_size=self.min_face, threshold_onet=self.min_confidence)
        boxes = []
        for face in found:
            x, y, w, h = (int(v) for v in face["box"])
            if face["confidence"] >= self.min_confidence and w > 0 and h > 0:
                boxes.append(Box(max(x, 0), max(y, 0), w, h, float(face["confidence"])))
        return _sort_largest_first(boxes)


class YuNetDetector:
    """OpenCV's YuNet (`cv2.FaceDetectorYN`); needs the user's `face_detection_yunet_*.onnx`.

    Args:
        model_path: the YuNet ONNX file.
        min_confidence: score threshold.
        min_face: smallest face side to report, in pixels.
    """

    name = "yunet"

    def __init__(self, model_path: str | Path | None = None, min_confidence: float = 0.8, min_face: int = 20):
        import os

        model_path = model_path or os.environ.get("FER_YUNET_MODEL")
        if not model_path or not Path(model_path).is_file():
            raise DetectorError(
                "YuNet needs its model file: pass model_path or set FER_YUNET_MODEL to a "
                f"face_detection_yunet_*.onnx file. Received: {model_path!r}"
            )
        try:
            self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), min_confidence)
        except cv2.error as e:
            raise DetectorError(f"{model_path}: not a loadable YuNet model ({e})") from e
        self._lock = threading.Lock()
        self.min_face = min_face

    def detect(self, image: np.ndarray) -> list[Box]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        height, width = image.shape[:2]
        with self._lock:
            self._net.setInputSize((width, height))
            _, faces = self._net.detect(image[:, :, :3])
        boxes = []
        for row in faces if faces is not None else []:
            x, y, w, h = (int(v) for v in row[:4])
            if min(w, h) >= self.min_face:
                boxes.append(Box(max(x, 0), max(y, 0), w, h, float(row[-1])))
        return _sort_largest_first(boxes)


DETECTORS = {"haar": HaarDetector, "mtcnn": MTCNNDetector, "yunet": YuNetDetector}
"""Detector backends by name; "haar" is the default."""

DEFAULT_DETECTOR = "haar"


def make_detector(name: str = DEFAULT_DETECTOR, **options) -> FaceDetector:
    """Build a detector by name.

    Raises:
        DetectorError: unknown name or a backend that cannot start here.
    """
    if name not in DETECTORS:
        raise DetectorError(f"Unknown detector. Expected one of {sorted(DETECTORS)}. Received: name={name!r}")
    return DETECTORS[name](**options)

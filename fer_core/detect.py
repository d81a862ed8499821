"""Face detection behind one interface, with several backends.

- "blazeface": Google's BlazeFace short-range model (shipped in fer_core/assets, Apache-2.0,
  from the mediapipe 0.10.14 wheel) run with LiteRT; about 1 ms a frame, the default.
- "blazeface_full": BlazeFace's full-range variant, for smaller or more distant faces.
- "haar": OpenCV's Haar cascade on a downscaled frame; no model file needed.
- "mtcnn": the `mtcnn` package (weights ship with it); slow, the most accurate on photos.
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


ASSETS = Path(__file__).resolve().parent / "assets"


def _ssd_anchor_centres(input_size: int, layers: list[tuple[int, int]]) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1] for BlazeFace's SSD heads: (stride, anchors per cell) per layer."""
    centres = []
    for stride, per_cell in layers:
        grid = input_size // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        cells = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


class BlazeFaceDetector:
    """BlazeFace (short- or full-range) through LiteRT; boxes decoded from its SSD anchors.

    Args:
        variant: "short" (faces within about 2 m, 128 px input) or "full" (192 px input).
        min_confidence: score threshold.
        min_face: smallest face side to report, in pixels.
    """

    _VARIANTS = {
        "short": ("face_detection_short_range.tflite", 128, [(8, 2), (16, 6)], 0.5),
        "full": ("face_detection_full_range_sparse.tflite", 192, [(4, 1)], 0.6),
    }

    def __init__(self, variant: str = "short", min_confidence: float | None = None, min_face: int = 20):
        from ai_edge_litert.interpreter import Interpreter

        if variant not in self._VARIANTS:
            raise DetectorError(f"BlazeFace variant must be 'short' or 'full'. Received: variant={variant!r}")
        filename, self.size, layers, default_threshold = self._VARIANTS[variant]
        self.name = "blazeface" if variant == "short" else "blazeface_full"
        path = ASSETS / filename
        try:
            self._net = Interpreter(model_path=str(path), num_threads=1)
            self._net.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise DetectorError(f"{path}: BlazeFace model cannot be loaded ({e})") from e
        self._input = self._net.get_input_details()[0]["index"]
        outputs = self._net.get_output_details()
        self._boxes = next(o["index"] for o in outputs if o["shape"][-1] == 16)
        self._scores = next(o["index"] for o in outputs if o["shape"][-1] == 1)
        self._anchors = _ssd_anchor_centres(self.size, layers)
        self.min_confidence = default_threshold if min_confidence is None else min_confidence
        self.min_face = min_face
        self._lock = threading.Lock()

    def _square_input(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """The frame padded at the bottom/right to a square, resized, RGB in [-1, 1]."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        height, width = image.shape[:2]
        side = max(height, width)
        square = cv2.copyMakeBorder(image[:, :, :3], 0, side - height, 0, side - width, cv2.BORDER_CONSTANT)
        small = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return (small[:, :, ::-1].astype(np.float32) / 127.5 - 1.0)[None], side

    def detect(self, image: np.ndarray) -> list[Box]:
        tensor, side = self._square_input(image)
        with self._lock:
            self._net.set_tensor(self._input, tensor)
            self._net.invoke()
            raw = self._net.get_tensor(self._boxes)[0]
            logits = self._net.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = np.flatnonzero(scores >= self.min_confidence)
        if keep.size == 0:
            return []
        centre = raw[keep, :2] / self.size + self._anchors[keep]
        size = raw[keep, 2:4] / self.size
        corners = (centre - size / 2.0) * side
        rects = [[float(x), float(y), float(w), float(h)] for (x, y), (w, h) in zip(corners, size * side)]
        chosen = cv2.dnn.NMSBoxes(rects, scores[keep].tolist(), self.min_confidence, 0.3)
        height, width = image.shape[:2]
        boxes = []
        for i in np.asarray(chosen).reshape(-1):
            x, y, w, h = rects[i]
            x0, y0 = max(int(round(x)), 0), max(int(round(y)), 0)
            x1, y1 = min(int(round(x + w)), width), min(int(round(y + h)), height)
            if min(x1 - x0, y1 - y0) >= self.min_face:
                boxes.append(Box(x0, y0, x1 - x0, y1 - y0, float(scores[keep][i])))
        return _sort_largest_first(boxes)


DETECTORS = {
    "blazeface": lambda **kw: BlazeFaceDetector("short", **kw),
    "blazeface_full": lambda **kw: BlazeFaceDetector("full", **kw),
    "haar": HaarDetector,
    "mtcnn": MTCNNDetector,
    "yunet": YuNetDetector,
}
"""Detector backends by name; "blazeface" is the default."""

DEFAULT_DETECTOR = "blazeface"


def make_detector(name: str = DEFAULT_DETECTOR, **options) -> FaceDetector:
    """Build a detector by name.

    Raises:
        DetectorError: unknown name or a backend that cannot start here.
    """
    if name not in DETECTORS:
        raise DetectorError(f"Unknown detector. Expected one of {sorted(DETECTORS)}. Received: name={name!r}")
    return DETECTORS[name](**options)


DETECTOR_NOTES = {
    "blazeface": "fast (about 1 ms), best for faces near the camera",
    "blazeface_full": "fast, finds smaller and more distant faces",
    "haar": "classic OpenCV cascade; frontal faces only",
    "mtcnn": "slow (about 100+ ms), the most thorough on photos",
    "yunet": "OpenCV YuNet with your own model file (FER_YUNET_MODEL)",
}
"""One line per detector for menus and --help."""


def available_detectors() -> list[str]:
    """Detector names usable here (YuNet only when its model file is configured)."""
    import os

    return [name for name in DETECTORS if name != "yunet" or os.environ.get("FER_YUNET_MODEL")]

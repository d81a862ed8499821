"""Face detection behind one interface, with several backends.

- "yunet": YuNet (shipped in fer_core/assets, Apache-2.0/MIT) run by ONNX Runtime, searched at
  one or two scales so faces from about 24 px to the whole photo are found; gives five landmarks
  per face. The default.
- "blazeface": Google's BlazeFace short-range model (shipped in fer_core/assets, Apache-2.0,
  from the mediapipe 0.10.14 wheel) run with LiteRT; about 1 ms a frame, the fastest.
- "blazeface_full": BlazeFace's full-range variant, for smaller or more distant faces.
- "haar": OpenCV's Haar cascade on a downscaled frame; no model file needed.
- "mtcnn": the `mtcnn` package (weights ship with it); slow and thorough.

Every detector takes `min_face` per call, so one shared detector serves every session.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_core.onnx_session import OnnxLoadError, open_onnx_session
from fer_core.preprocess import to_gray
from fer_core.settings import Environment
from fer_core.types import Box

ASSETS = Path(__file__).resolve().parent / "assets"


class DetectorError(RuntimeError):
    """A detector cannot be built; the message says what is missing."""


class FaceDetector(Protocol):
    """Anything that finds faces in a BGR image."""

    name: str

    def detect(self, image: np.ndarray, min_face: int | None = None) -> list[Box]:
        """Face boxes in pixels of `image`, largest first; [] when there is no face.

        `min_face` (pixels) overrides the detector's own smallest face for this call.
        """


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
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray, min_face: int | None = None) -> list[Box]:
        gray = to_gray(image)
        height, width = gray.shape
        scale = min(1.0, self.detect_width / width) if self.detect_width else 1.0
        small = (
            cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
            if scale < 1
            else gray
        )
        small = cv2.equalizeHist(small)
        min_side = max(12, int((self.min_face if min_face is None else min_face) * scale))
        with self._lock:
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

    def detect(self, image: np.ndarray, min_face: int | None = None) -> list[Box]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        rgb = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
        smallest = self.min_face if min_face is None else min_face
        with self._lock:
            found = self._mtcnn.detect_faces(rgb, min_face_size=smallest, threshold_onet=self.min_confidence)
        boxes = []
        for face in found:
            x, y, w, h = (int(v) for v in face["box"])
            if face["confidence"] >= self.min_confidence and w > 0 and h > 0:
                boxes.append(Box(max(x, 0), max(y, 0), w, h, float(face["confidence"])))
        return _sort_largest_first(boxes)


YUNET_FILE = "yunet_n.onnx"
YUNET_SHA256 = "40f766941d46c8ba4c20b4e34dab43d62334dce59292a65ebbcfafd8a790e6d7"
"""YuNet-n (upstream's yunet_n_640_640.onnx with its input size left free: see
assets/derive_yunet.py): on crowded scenes of 32-64 px faces it found 82% where YuNet-s found
73%, and ran faster here (13 vs 19 ms a 640x480 photo); tests/benchmarks/BENCHMARKS.md has the figures."""


class _YuNetOnnx:
    """YuNet run by ONNX Runtime (about twice as fast as OpenCV's dnn here), decoded as
    `cv2.FaceDetectorYN` decodes it: rows of box (x, y, w, h), five landmarks (x, y) and score.

    The input is the BGR image as float, padded right and bottom to a multiple of 32. Each of
    the strides 8, 16 and 32 has one anchor per cell; a cell's score is the geometric mean of its
    class and objectness outputs, its box centre is (cell + offset) * stride and its side
    exp(output) * stride; overlapping boxes are suppressed (IoU over `nms_threshold`).
    """

    STRIDES = (8, 16, 32)

    def __init__(self, session, score_threshold: float, nms_threshold: float = 0.3):
        self._session = session
        self._input = session.get_inputs()[0].name
        self._outputs = [o.name for o in session.get_outputs()]
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def detect(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        padded_h, padded_w = -(-height // 32) * 32, -(-width // 32) * 32
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
        blob[0, :, :height, :width] = image.transpose(2, 0, 1)
        out = dict(zip(self._outputs, self._session.run(None, {self._input: blob})))
        rows = []
        for stride in self.STRIDES:
            cls = np.clip(out[f"cls_{stride}"][0, :, 0], 0, 1)
            obj = np.clip(out[f"obj_{stride}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            cells = np.flatnonzero(score >= self.score_threshold)
            if not cells.size:
                continue
            col, row = (cells % (padded_w // stride))[:, None], (cells // (padded_w // stride))[:, None]
            box = out[f"bbox_{stride}"][0, cells]
            centre = (np.hstack([col, row]) + box[:, :2]) * stride
            side = np.exp(box[:, 2:4]) * stride
            points = out[f"kps_{stride}"][0, cells].reshape(-1, 5, 2)
            points = (points + np.stack([col, row], axis=-1)) * stride
            rows.append(np.hstack([centre - side / 2, side, points.reshape(-1, 10), score[cells, None]]))
        if not rows:
            return np.zeros((0, 15), np.float32)
        faces = np.vstack(rows).astype(np.float32)
        keep = cv2.dnn.NMSBoxes(faces[:, :4].tolist(), faces[:, 14].tolist(), self.score_threshold, self.nms_threshold)
        return faces[np.asarray(keep, dtype=int).reshape(-1)]


def _onnx_session(path: Path, threads: int):
    """An ONNX Runtime session for the file, or None when its input size is fixed (OpenCV runs those).

    Raises:
        DetectorError: the file is not a loadable ONNX model, or not a YuNet one.
    """
    try:
        session = open_onnx_session(path, threads)
    except OnnxLoadError as e:
        raise DetectorError(f"{path}: not a loadable YuNet model ({e.__cause__})") from e
    names = {o.name for o in session.get_outputs()}
    shape = session.get_inputs()[0].shape
    if not {f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in _YuNetOnnx.STRIDES} <= names:
        raise DetectorError(f"{path}: not a YuNet model (outputs {sorted(names)})")
    return None if all(isinstance(d, int) for d in shape[2:]) else session


def yunet_model_path(override: str | Path | None = None) -> tuple[Path, bool]:
    """The YuNet model to load and whether it is the shipped one (checked against its sha256).

    `override` (or the FER_YUNET_MODEL environment variable) names another YuNet ONNX file.
    """
    chosen = override or Environment.read().yunet_model
    return (Path(chosen), False) if chosen else (ASSETS / YUNET_FILE, True)


class _YuNetOpenCV:
    """`cv2.FaceDetectorYN` with the interface of _YuNetOnnx."""

    def __init__(self, path: str, score_threshold: float):
        self._net = cv2.FaceDetectorYN.create(path, "", (320, 320), score_threshold, 0.3, 5000)

    def detect(self, image: np.ndarray) -> np.ndarray:
        size = (image.shape[1], image.shape[0])
        if self._net.getInputSize() != size:
            self._net.setInputSize(size)
        faces = self._net.detect(image)[1]
        return np.zeros((0, 15), np.float32) if faces is None else faces


class YuNetDetector:
    """YuNet-n (shipped in fer_core/assets) run by ONNX Runtime; the default.

    One photo is searched at one or two scales, merged by non-maximum suppression:

    - the main pass: the photo resized so its longer side is `work_size` (800 px) but its
      shorter side at most 640 px, the largest frame a face could fill and still be found (42 of
      42 real faces filling a 640 px frame were). Smaller photos are enlarged towards that size, which
      pays: on composed crowded scenes of FER-2013 *train* faces, 640x480 searched at 800x600
      found 89.5% of the faces of 32-64 px against 81.3% at 640x480 (faces of 32-40 px: 83%
      against 67%), for 1.5x the detection time (tests/benchmarks/bench_yunet_scales.py).
      Enlarging stops at 1.25x, and a photo in which the enlarged pass finds nothing is searched
      again as it is, since a face filling the frame can grow past what YuNet finds;
    - a fine pass at half size when the main pass shrinks a big photo below half size, so faces
      of 24 px in the photo are still 12 px (with `small_faces`; off for live video).

    The shipped file runs on ONNX Runtime, whatever the input size. A YuNet file whose input size
    is fixed (`FER_YUNET_MODEL`, e.g. upstream's 640x640 file) runs on `cv2.FaceDetectorYN`, with a
    network for each pass, since changing a network's input size rebuilds it.

    Args:
        model_path: a YuNet ONNX file instead of the shipped one (also FER_YUNET_MODEL).
        min_confidence: score threshold.
        min_face: smallest face side to report, in pixels (per call: `detect(..., min_face=)`).
        work_size: longer side of the main pass.
        small_faces: run the fine pass on big photos.
        threads: ONNX Runtime's threads; by default as many as OpenCV is set to use (the
            labelling workers set OpenCV to one thread each).

    Raises:
        DetectorError: the model file is missing, altered (shipped file) or not loadable.
    """

    name = "yunet"
    FACE_SIDE_OF_HEIGHT = 1 / 1.2
    """Faces are reported as squares this share of YuNet's box height, centred on its box: with
    the models' 10% margin the crop is then as tall as YuNet's box, as FER-2013's crops are.
    Chosen on FER-2013 *train* faces composed into scenes: 68.9% right on found faces, against
    63.8% when YuNet's own (taller, narrower) box is cropped with the same margin."""
    LARGEST_FRAME = 640  # px: faces filling a frame up to this size were all found
    LARGEST_ENLARGEMENT = 1.25
    """Small photos are enlarged at most this much: FER-2013 crops (a face filling the frame) of
    48-224 px enlarged to 640 px were found less often than as they are (160-165 of 200 against
    181-196; tests/benchmarks/bench_yunet_scales.py); bench_face_crops.py measures the shipped settings."""
    SMALLEST_FACE = 12  # px at the detector's scale
    SMALLEST_PHOTO_FACE = 24  # px in the photo, found by the fine pass
    TILE = 800  # px: larger inputs are searched in tiles of this side
    TILE_OVERLAP = 96  # px at the pass's scale: more than the faces the fine pass is for

    def __init__(
        self,
        model_path: str | Path | None = None,
        min_confidence: float = 0.45,
        min_face: int = 16,  # YuNet's boxes are narrower than tall: a 24 px face is about 18 px wide
        work_size: int = 800,
        small_faces: bool = True,
        threads: int | None = None,
    ):
        path, shipped = yunet_model_path(model_path)
        if not path.is_file():
            hint = "reinstall the package" if shipped else "check FER_YUNET_MODEL"
            raise DetectorError(f"{path}: YuNet model file is missing ({hint})")
        if shipped and _sha256(path) != YUNET_SHA256:
            raise DetectorError(f"{path}: sha256 does not match the shipped YuNet model (corrupt or replaced)")
        session = _onnx_session(path, threads if threads is not None else max(1, cv2.getNumThreads()))
        if session is not None:  # one runner serves every pass: ONNX Runtime takes any input size
            self._nets = [_YuNetOnnx(session, min_confidence)] * 2
        else:  # a YuNet file with a fixed input size: OpenCV's FaceDetectorYN, one network a pass
            try:
                self._nets = [_YuNetOpenCV(str(path), min_confidence) for _ in range(2)]
            except cv2.error as e:
                raise DetectorError(f"{path}: not a loadable YuNet model ({e})") from e
        self._lock = threading.Lock()
        self.min_face = min_face
        self.work_size = work_size
        self.small_faces = small_faces

    def scales(self, height: int, width: int) -> list[float]:
        """The scales at which a photo of this size is searched (see the class docstring)."""
        main = min(self.work_size / max(height, width), self.LARGEST_FRAME / min(height, width))
        main = min(main, self.LARGEST_ENLARGEMENT)
        scales = [main]
        fine = self.SMALLEST_FACE / self.SMALLEST_PHOTO_FACE
        if self.small_faces and main < fine:
            scales.append(fine)
        return scales

    def _detect_at(self, image: np.ndarray, scale: float, net: int = 0) -> list[Box]:
        height, width = image.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        smooth = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR  # INTER_AREA enlarges in blocks
        resized = image if scale == 1.0 else cv2.resize(image, size, interpolation=smooth)
        if net == 0 or max(size) <= self.TILE:  # the main pass is never cut: its faces may be large
            return self._run_net(net, resized, scale, (0, 0))
        # The other passes of a big photo go through in tiles: YuNet's buffers for a 2000x1500
        # input take about 225 MB, for an 800 px tile about 50 MB. Tiles overlap by more than
        # the small faces the fine pass is for (larger ones are found by the main pass).
        step = self.TILE - self.TILE_OVERLAP
        boxes = []
        for top in range(0, max(size[1] - self.TILE_OVERLAP, 1), step):
            for left in range(0, max(size[0] - self.TILE_OVERLAP, 1), step):
                tile = resized[top : top + self.TILE, left : left + self.TILE]
                pad_y, pad_x = self.TILE - tile.shape[0], self.TILE - tile.shape[1]
                if pad_y or pad_x:
                    tile = cv2.copyMakeBorder(tile, 0, pad_y, 0, pad_x, cv2.BORDER_CONSTANT, value=0)
                found = self._run_net(net, tile, scale, (left, top))
                boxes += [b for b in found if self._whole_in_tile(b, scale, left, top, size)]
        return _suppress_overlaps(boxes)

    def _whole_in_tile(self, box: Box, scale: float, left: int, top: int, size: tuple[int, int]) -> bool:
        """Whether a tile's face is one the tiling keeps: small enough that a tile holds it whole
        (larger ones are the main pass's) and clear of the tile's cut edges (a face crossing a
        cut lies whole in the neighbouring tile, so a part of a face seen here is dropped)."""
        x0, y0 = box.x * scale - left, box.y * scale - top
        x1, y1 = x0 + box.w * scale, y0 + box.h * scale
        margin = 2
        cut_left, cut_top = left > 0, top > 0
        cut_right, cut_bottom = left + self.TILE < size[0], top + self.TILE < size[1]
        return (
            box.w * scale <= self.TILE_OVERLAP
            and not (cut_left and x0 < margin)
            and not (cut_top and y0 < margin)
            and not (cut_right and x1 > self.TILE - margin)
            and not (cut_bottom and y1 > self.TILE - margin)
        )

    def _run_net(self, net: int, image: np.ndarray, scale: float, offset: tuple[int, int]) -> list[Box]:
        """YuNet on one input; boxes in the photo's pixels (`offset`: the input's place at `scale`)."""
        with self._lock:
            faces = self._nets[net].detect(np.ascontiguousarray(image))
        dx, dy = offset
        boxes = []
        for row in faces:
            x, y, w, h = (float(row[0]) + dx) / scale, (float(row[1]) + dy) / scale, row[2] / scale, row[3] / scale
            side = float(h) * self.FACE_SIDE_OF_HEIGHT
            left, top = x + (float(w) - side) / 2, y + (float(h) - side) / 2
            points = tuple(
                ((float(row[4 + 2 * i]) + dx) / scale, (float(row[5 + 2 * i]) + dy) / scale) for i in range(5)
            )
            boxes.append(
                Box(int(round(left)), int(round(top)), int(round(side)), int(round(side)), float(row[14]), points)
            )
        return boxes

    def detect(self, image: np.ndarray, min_face: int | None = None) -> list[Box]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        image = np.ascontiguousarray(image[:, :, :3])
        scales = self.scales(*image.shape[:2])
        found = [box for i, scale in enumerate(scales) for box in self._detect_at(image, scale, net=i)]
        if not found and scales[0] > 1:  # a face filling an enlarged photo may be too large: look as it is
            found = self._detect_at(image, 1.0, net=1)
        height, width = image.shape[:2]
        smallest = self.min_face if min_face is None else min_face
        return [b for b in _suppress_overlaps(found) if min(b.w, b.h) >= smallest and _inside(b, width, height)]


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inside(box: Box, width: int, height: int) -> bool:
    """Whether the box's centre lies in the image (YuNet may reach past the border)."""
    return 0 <= box.x + box.w / 2 < width and 0 <= box.y + box.h / 2 < height


def _suppress_overlaps(boxes: list[Box], iou: float = 0.3) -> list[Box]:
    """Non-maximum suppression: the best-scored box of each overlapping group, largest first."""
    if len(boxes) <= 1:
        return boxes
    rects = [[b.x, b.y, b.w, b.h] for b in boxes]
    keep = cv2.dnn.NMSBoxes(rects, [b.score for b in boxes], 0.0, iou)
    return _sort_largest_first([boxes[i] for i in np.asarray(keep).reshape(-1)])


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

    def detect(self, image: np.ndarray, min_face: int | None = None) -> list[Box]:
        tensor, side = self._square_input(image)
        smallest = self.min_face if min_face is None else min_face
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
            if min(x1 - x0, y1 - y0) >= smallest:
                boxes.append(Box(x0, y0, x1 - x0, y1 - y0, float(scores[keep][i])))
        return _sort_largest_first(boxes)


DETECTORS = {
    "yunet": YuNetDetector,
    "blazeface": lambda **kw: BlazeFaceDetector("short", **kw),
    "blazeface_full": lambda **kw: BlazeFaceDetector("full", **kw),
    "haar": HaarDetector,
    "mtcnn": MTCNNDetector,
}
"""Detector backends by name; "yunet" is the default."""

DEFAULT_DETECTOR = "yunet"

LIVE_OPTIONS = {"yunet": {"work_size": 320, "small_faces": False}}
"""Settings for live video: YuNet on a 320 px frame keeps 640x480 video within 15 ms a frame
(webcam faces are large; with the photo settings a frame takes about 25 ms on 2 cores, with
detection, classification and drawing)."""


def make_detector(name: str = DEFAULT_DETECTOR, live: bool = False, **options) -> FaceDetector:
    """Build a detector by name; `live` applies LIVE_OPTIONS (explicit options still win).

    Raises:
        DetectorError: unknown name or a backend that cannot start here.
    """
    if name not in DETECTORS:
        raise DetectorError(f"Unknown detector. Expected one of {sorted(DETECTORS)}. Received: name={name!r}")
    settings = {**(LIVE_OPTIONS.get(name, {}) if live else {}), **options}
    return DETECTORS[name](**settings)


DETECTOR_NOTES = {
    "yunet": "the default: finds the most faces in real photos (24 px to frame-filling), gives landmarks",
    "blazeface": "the fastest (about 1 ms); faces near the camera only, misses many in group photos",
    "blazeface_full": "fast; smaller and more distant faces than blazeface",
    "haar": "classic OpenCV cascade; frontal faces only, misses many",
    "mtcnn": "slow (100+ ms a photo), thorough; a second opinion when yunet finds no face",
}
"""One line per detector for menus and --help."""


def available_detectors() -> list[str]:
    """Detector names usable here, the default first."""
    return list(DETECTORS)

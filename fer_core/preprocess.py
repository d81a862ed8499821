"""The one preprocessing path used by training, evaluation and inference.

A face becomes a square grayscale uint8 crop of `size` x `size` pixels. Scaling to
[0, 1] happens inside the model (a Rescaling layer), so every caller feeds the same
uint8 crops and no code path can normalise differently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fer_core.types import Box


@dataclass(frozen=True)
class Preprocessing:
    """How a face is turned into model input; stored in every model card.

    Attributes:
        size: side of the square crop in pixels.
        margin: extra context around a detected box, as a fraction of its side.
        align: turn the crop so the eyes are level when the detector gives landmarks
            (YuNet) and they are off level by ALIGN_MIN_DEGREES or more; dataset crops have
            no landmarks and are used as they are.
    """

    size: int = 48
    margin: float = 0.1
    align: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls(
            size=int(data.get("size", 48)),
            margin=float(data.get("margin", 0.1)),
            align=bool(data.get("align", False)),
            # cards written before alignment existed were used without it
        )


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale uint8 view of a BGR, BGRA or already-gray image."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    raise ValueError(f"Expected an image of shape (H, W) or (H, W, 1|3|4). Received: shape={image.shape}")


def square_box(box: Box, margin: float) -> tuple[int, int, int]:
    """Square (x, y, side) centred on `box`, grown by `margin` of its longer side."""
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    side_px = max(1, int(round(side)))
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side_px


def _crop_padded(gray: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    """Crop a square that may reach past the image edge, replicating the border."""
    h, w = gray.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"Face box lies outside the image. Received: box at ({x}, {y}) side {side}, image {w}x{h}")
    crop = gray[y0:y1, x0:x1]
    pads = (y0 - y, y + side - y1, x0 - x, x + side - x1)
    if any(pads):
        crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
    return crop


def preprocess_face(image: np.ndarray, box: Box | None = None, spec: Preprocessing = Preprocessing()) -> np.ndarray:
    """Turn one face into model input.

    Args:
        image: BGR, BGRA or grayscale uint8 image.
        box: the face in pixels; None means the whole image is the face (a dataset crop).
        spec: crop size and margin.

    Returns:
        uint8 array of shape (spec.size, spec.size).
    """
    gray = to_gray(image)
    if box is None:
        crop = gray
    elif spec.align and box.landmarks and abs(eye_angle(box)) >= ALIGN_MIN_DEGREES:
        return _aligned_crop(gray, box, spec)
    else:
        crop = _crop_padded(gray, *square_box(box, spec.margin))
    return resize_crop(crop, spec.size)


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """A grayscale crop as (size, size): area interpolation to shrink, bilinear to grow."""
    if crop.shape == (size, size):
        return np.ascontiguousarray(crop)
    shrinking = crop.shape[0] > size or crop.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Crops (N, S, S) as (N, size, size), each resized as `preprocess_face` resizes a crop.

    A square source no larger than the crops resized here equals that source preprocessed at
    `size` directly; a larger one (e.g. FER-2013's 224 px files) does not.
    """
    if crops.shape[1:] == (size, size):
        return crops
    out = np.empty((len(crops), size, size), dtype=np.uint8)
    for i, crop in enumerate(crops):
        out[i] = resize_crop(crop, size)
    return out


ALIGN_MIN_DEGREES = 8.0
"""Faces turned less than this are cropped as they are: FER-2013's own crops lean a few degrees,
and turning them upright cost accuracy on upright faces (tests/benchmarks/bench_detectors.py)."""


def eye_angle(box: Box) -> float:
    """Degrees the face is turned in the image plane (0 = eyes level), from its landmarks."""
    (rx, ry), (lx, ly) = box.landmarks[0], box.landmarks[1]
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def _aligned_crop(gray: np.ndarray, box: Box, spec: Preprocessing) -> np.ndarray:
    """The face's square crop turned so its eyes are level.

    A crop 1.5 times as wide is shrunk first (area interpolation, as for unaligned crops),
    turned about its centre at that small size, and its middle kept.
    """
    x, y, side = square_box(box, spec.margin)
    wide = int(round(side * 1.5))
    big = _crop_padded(gray, x - (wide - side) // 2, y - (wide - side) // 2, wide)
    work = int(round(spec.size * 1.5))
    interpolation = cv2.INTER_AREA if wide > work else cv2.INTER_LINEAR
    small = cv2.resize(big, (work, work), interpolation=interpolation)
    turn = cv2.getRotationMatrix2D((work / 2.0, work / 2.0), eye_angle(box), 1.0)
    turned = cv2.warpAffine(small, turn, (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    start = (work - spec.size) // 2
    return np.ascontiguousarray(turned[start : start + spec.size, start : start + spec.size])


def preprocess_faces(image: np.ndarray, boxes: list[Box], spec: Preprocessing = Preprocessing()) -> np.ndarray:
    """Model input for every face of one image: uint8 array (len(boxes), size, size)."""
    gray = to_gray(image)
    out = np.empty((len(boxes), spec.size, spec.size), dtype=np.uint8)
    for i, box in enumerate(boxes):
        out[i] = preprocess_face(gray, box, spec)
    return out


def to_model_input(crops: np.ndarray) -> np.ndarray:
    """Stack uint8 crops (N, S, S) into the float32 (N, S, S, 1) tensor models take."""
    return crops.astype(np.float32)[..., None]

"""The one preprocessing path used by training, evaluation and inference.

Each model card declares how a face becomes its input (`Preprocessing`):

- "margin" crops (this project's own models): a square around the detected box grown by a
  margin, in grayscale, `size` x `size` uint8;
- "five_point" crops (models trained on aligned faces, e.g. RAF-DB's): a similarity transform maps
  the five detector landmarks onto a template, in RGB colour, (size, size, 3) uint8.

Scaling to floats happens in the classifier (a Rescaling layer inside LiteRT files, the card's
`input` normalisation for ONNX files), so every caller feeds the same uint8 crops and no code
path can normalise differently. An ensemble whose members crop differently takes a
`CompositePreprocessing`: each face is cropped once per distinct way, the crops flattened side by
side into one uint8 vector per face.
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
    crop: str = "margin"
    color: str = "gray"

    def __post_init__(self):
        if self.crop not in CROP_KINDS or self.color not in COLORS or self.size < 8:
            raise ValueError(
                f"Expected crop in {CROP_KINDS}, color in {COLORS} and size >= 8. "
                f"Received: crop={self.crop!r}, color={self.color!r}, size={self.size!r}"
            )

    @property
    def crop_shape(self) -> tuple[int, ...]:
        """Shape of one face's crop: (size, size) in gray, (size, size, 3) in colour."""
        return (self.size, self.size) if self.color == "gray" else (self.size, self.size, 3)

    @property
    def family(self) -> tuple:
        """What crops of this spec share apart from their size: they can be resized into each other."""
        return (self.crop, self.color, self.margin, self.align)

    @property
    def parts(self) -> tuple[Preprocessing, ...]:
        return (self,)

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.crop == "margin" and self.color == "gray":  # cards of margin crops stay as they were
            del data["crop"], data["color"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing | CompositePreprocessing:
        """The spec a card stores (a composite when it lists `parts`).

        Raises:
            ValueError: an unknown crop kind or colour, or a bad size.
        """
        if "parts" in data:
            return CompositePreprocessing(tuple(cls.from_dict(p) for p in data["parts"]))
        return cls(
            size=int(data.get("size", 48)),
            margin=float(data.get("margin", 0.1)),
            align=bool(data.get("align", False)),
            # cards written before alignment existed were used without it
            crop=str(data.get("crop", "margin")),
            color=str(data.get("color", "gray")),
        )


CROP_KINDS = ("margin", "five_point")
COLORS = ("gray", "rgb")


@dataclass(frozen=True)
class CompositePreprocessing:
    """Several ways of cropping one face, for an ensemble whose members crop differently.

    A face's crop is every part's crop flattened and put side by side (uint8 vector); `split`
    gives the parts back.
    """

    parts: tuple[Preprocessing, ...]

    @property
    def crop_shape(self) -> tuple[int, ...]:
        return (sum(int(np.prod(p.crop_shape)) for p in self.parts),)

    @property
    def size(self) -> int:
        return min(p.size for p in self.parts)

    def to_dict(self) -> dict:
        return {"parts": [p.to_dict() for p in self.parts]}

    def split(self, crops: np.ndarray) -> dict[tuple, np.ndarray]:
        """Packed crops (N, D) as {part family: crops (N, *part.crop_shape)}."""
        out, start = {}, 0
        for part in self.parts:
            n = int(np.prod(part.crop_shape))
            out[part.family] = crops[:, start : start + n].reshape(-1, *part.crop_shape)
            start += n
        return out


def combine_specs(specs: list[Preprocessing]) -> Preprocessing | CompositePreprocessing:
    """The crops that serve models of these specs: one per family, at the family's smallest size."""
    smallest: dict[tuple, Preprocessing] = {}
    for spec in specs:
        for part in spec.parts:
            if part.family not in smallest or part.size < smallest[part.family].size:
                smallest[part.family] = part
    parts = tuple(smallest.values())
    return parts[0] if len(parts) == 1 else CompositePreprocessing(parts)


def convert_crops(
    crops: np.ndarray, source: Preprocessing | CompositePreprocessing, target: Preprocessing | CompositePreprocessing
) -> np.ndarray:
    """Crops of `source` as crops of `target`: each of target's parts taken from the source part of
    its family and resized (see `resize_crops`).

    Raises:
        KeyError: `source` has no crops of a family `target` needs.
    """
    by_family = source.split(crops) if isinstance(source, CompositePreprocessing) else {source.family: crops}
    parts = [resize_crops(by_family[part.family], part.size) for part in target.parts]
    if isinstance(target, Preprocessing):
        return parts[0]
    return np.concatenate([x.reshape(len(x), -1) for x in parts], axis=1)


def viewable_crop(crop: np.ndarray, spec: Preprocessing | CompositePreprocessing, min_side: int = 96) -> np.ndarray:
    """One face's crop as a picture to show (gray, or RGB), enlarged to at least `min_side` pixels.

    A composite crop shows its first part.
    """
    if isinstance(spec, CompositePreprocessing):
        crop = spec.split(crop[None])[spec.parts[0].family][0]
    factor = max(1, -(-min_side // crop.shape[0]))
    return np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)


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


def to_rgb(image: np.ndarray) -> np.ndarray:
    """RGB uint8 view of a BGR, BGRA or gray image (gray repeated in the three channels)."""
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise ValueError(f"Expected an image of shape (H, W) or (H, W, 1|3|4). Received: shape={image.shape}")


def preprocess_face(
    image: np.ndarray, box: Box | None = None, spec: Preprocessing | CompositePreprocessing = Preprocessing()
) -> np.ndarray:
    """Turn one face into model input.

    Args:
        image: BGR, BGRA or grayscale uint8 image.
        box: the face in pixels; None means the whole image is the face (a dataset crop).
        spec: how the model crops faces (its card's preprocessing).

    Returns:
        uint8 array of shape `spec.crop_shape`.
    """
    if isinstance(spec, CompositePreprocessing):
        return np.concatenate([preprocess_face(image, box, part).reshape(-1) for part in spec.parts])
    if spec.crop == "five_point":
        return _five_point_crop(to_rgb(image) if spec.color == "rgb" else to_gray(image), box, spec.size)
    gray = to_gray(image)
    if box is None:
        crop = gray
    elif spec.align and box.landmarks and abs(eye_angle(box)) >= ALIGN_MIN_DEGREES:
        return _aligned_crop(gray, box, spec)
    else:
        crop = _crop_padded(gray, *square_box(box, spec.margin))
    return resize_crop(crop, spec.size)


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """A crop (gray or colour) as (size, size[, 3]): area interpolation to shrink, bilinear to grow."""
    if crop.shape[:2] == (size, size):
        return np.ascontiguousarray(crop)
    shrinking = crop.shape[0] > size or crop.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def resize_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Crops (N, S, S) as (N, size, size), each resized as `preprocess_face` resizes a crop.

    A square source no larger than the crops resized here equals that source preprocessed at
    `size` directly; a larger one (e.g. FER-2013's 224 px files) does not.
    """
    if crops.shape[1:3] == (size, size):
        return crops
    out = np.empty((len(crops), size, size, *crops.shape[3:]), dtype=np.uint8)
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


def preprocess_faces(
    image: np.ndarray, boxes: list[Box], spec: Preprocessing | CompositePreprocessing = Preprocessing()
) -> np.ndarray:
    """Model input for every face of one image: uint8 array (len(boxes), *spec.crop_shape)."""
    needs_colour = any(p.color == "rgb" for p in spec.parts)
    source = image if needs_colour else to_gray(image)
    out = np.empty((len(boxes), *spec.crop_shape), dtype=np.uint8)
    for i, box in enumerate(boxes):
        out[i] = preprocess_face(source, box, spec)
    return out


FIVE_POINT_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)
"""Where the five landmarks (right eye, left eye, nose tip, right and left mouth corners) go in a
112 x 112 aligned face (the ArcFace template, which RAF-DB models such as OpenCV Zoo's are trained on)."""

LANDMARKS_IN_BOX = np.array(
    [[0.335, 0.395], [0.665, 0.395], [0.5, 0.58], [0.36, 0.77], [0.64, 0.77]],
    np.float64,
)
"""Typical landmark positions as fractions of a YuNet face box, standing in for landmarks where a box
has none (another detector, or a face crop whose face the detector did not find)."""


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 rotation + uniform scale + shift (no reflection) that best maps `src` points onto `dst`.

    Least squares (Umeyama, 1991) over (K, 2) point sets, K >= 2.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - src_mean, dst - dst_mean
    cov = b.T @ a / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / a.var(axis=0).sum()
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def face_landmarks(box: Box | None, width: int, height: int) -> np.ndarray:
    """The box's five landmarks (5, 2), or typical ones for a box (or a whole crop) without them."""
    if box is not None and box.landmarks and len(box.landmarks) == 5:
        return np.asarray(box.landmarks, np.float64)
    x, y, w, h = (0, 0, width, height) if box is None else (box.x, box.y, box.w, box.h)
    return np.array([x, y]) + LANDMARKS_IN_BOX * np.array([w, h])


def _five_point_crop(image: np.ndarray, box: Box | None, size: int) -> np.ndarray:
    """The face warped so its landmarks land on FIVE_POINT_TEMPLATE scaled to `size`."""
    points = face_landmarks(box, image.shape[1], image.shape[0])
    matrix = similarity_transform(points, FIVE_POINT_TEMPLATE * (size / 112.0))
    scale = float(np.hypot(*matrix[:, 0]))
    if scale < 0.5:  # shrinking a lot: smooth first, as area interpolation would
        sigma = 0.5 / scale
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def to_model_input(crops: np.ndarray) -> np.ndarray:
    """Stack uint8 crops (N, S, S) or (N, S, S, 3) into the float32 (N, S, S, C) tensor Keras and
    LiteRT models take."""
    x = np.asarray(crops).astype(np.float32)
    return x[..., None] if x.ndim == 3 else x

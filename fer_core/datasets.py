"""Labelled face sets for training and evaluation: class folders and the FER-2013 CSV.

Class folders may hold face crops or whole photos. The rule: an image whose longer side is at
most CROP_MAX_SIDE pixels is a face crop and is used whole (FER-2013's are 48 px, or 224 px in
upscaled copies; face-crop sets such as JAFFE or AffectNet's crops are 256 px or less); a larger
image is a photo, and its largest face (found by the default detector) is cropped through the
same preprocessing as at inference. A photo with no face is left out and counted.
"""

from __future__ import annotations

import csv
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from fer_core.classes import EMOTIONS, NUM_CLASSES, canonical_emotion
from fer_core.imageio import MAX_PIXELS, ImageReadError, is_image_path, is_special_folder, read_image
from fer_core.preprocess import CompositePreprocessing, Preprocessing, preprocess_face


class DatasetError(ValueError):
    """A labelled set cannot be used; the message names what is wrong."""


@dataclass
class LabeledFaces:
    """Face crops with labels, ready for the classifier.

    Attributes:
        images: uint8 (N, *spec.crop_shape) preprocessed crops.
        labels: int64 (N,) indexes into EMOTIONS.
        sources: where each crop came from (path, or "file.csv:row").
        errors: (source, reason) for every item that was skipped.
        unknown_classes: folder names that are not an emotion or alias (skipped).
        usage: per-item split tag from a FER CSV ("Training", "PublicTest", ...), else empty.
        photos_cropped: items that were whole photos, their largest face cropped.
        photos_without_face: photos left out because no face was found (also in `errors`).
        spec: how the crops were made (None: unknown, e.g. a set built by hand).
    """

    images: np.ndarray
    labels: np.ndarray
    sources: list[str]
    errors: list[tuple[str, str]] = field(default_factory=list)
    unknown_classes: list[str] = field(default_factory=list)
    usage: list[str] = field(default_factory=list)
    photos_cropped: int = 0
    photos_without_face: int = 0
    spec: Preprocessing | CompositePreprocessing | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        """Number of items per emotion, every emotion listed."""
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts)}

    def fingerprint(self) -> str:
        """Short hash of the content, for caching evaluation results."""
        h = hashlib.sha256()
        h.update(self.images.tobytes())
        h.update(self.labels.tobytes())
        return h.hexdigest()[:16]

    def subset(self, index: np.ndarray) -> LabeledFaces:
        """The items at `index`, as a new set."""
        return LabeledFaces(
            images=self.images[index],
            labels=self.labels[index],
            sources=[self.sources[i] for i in index],
            usage=[self.usage[i] for i in index] if self.usage else [],
            photos_cropped=self.photos_cropped,
            photos_without_face=self.photos_without_face,
            spec=self.spec,
        )

    def photo_note(self) -> str:
        """One sentence on whole photos found in the set ("" when every image was a face crop)."""
        if not (self.photos_cropped or self.photos_without_face):
            return ""
        note = f"{self.photos_cropped} images were whole photos: the largest face of each was cropped"
        if self.photos_without_face:
            note += f"; {self.photos_without_face} photos had no face and were left out"
        return note + f" (images over {CROP_MAX_SIDE} px are treated as photos)."


CROP_MAX_SIDE = 256
"""Images up to this many pixels on their longer side are face crops; larger ones are photos.

256, not less: FER-2013 also circulates upscaled to 224 px, and running the detector on such
crops re-frames them (and loses 2% of them, where it finds no face), so a model would be
trained and measured on other faces than the 48 px originals give."""

NO_FACE = "no face found in this photo (left out)"


class _FaceCropper:
    """Turns a labelled image into a model crop by the module's rule (a detector made on first need).

    A face crop is used whole by margin crops; five-point crops need landmarks, so the detector
    looks for the face inside the crop too (typical landmark positions stand in where it finds none).
    """

    def __init__(self, spec: Preprocessing | CompositePreprocessing, always_detect: bool = False):
        self.spec = spec
        self.always_detect = always_detect
        self._detector = None
        self._lock = threading.Lock()

    def _detect(self, image: np.ndarray):
        with self._lock:
            if self._detector is None:
                from fer_core.detect import make_detector

                self._detector = make_detector()
        return self._detector.detect(image)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """(crop, whether the image was a photo).

        Raises:
            ValueError: a photo with no face (NO_FACE).
        """
        if self.always_detect or max(image.shape[:2]) > CROP_MAX_SIDE:
            faces = self._detect(image)
            if not faces:
                raise ValueError(NO_FACE)
            return preprocess_face(image, faces[0], self.spec), True
        if all(part.crop == "margin" for part in self.spec.parts):
            return preprocess_face(image, None, self.spec), False
        inner = self._face_in_crop(image)
        crops = [preprocess_face(image, inner if p.crop == "five_point" else None, p) for p in self.spec.parts]
        return (crops[0] if len(crops) == 1 else np.concatenate([c.reshape(-1) for c in crops])), False

    def _face_in_crop(self, image: np.ndarray):
        """The largest face the detector finds in a face crop, or None.

        The crop is searched as it is: bordering or enlarging it first found fewer faces on
        wild_dev's small film crops and scored lower there.
        """
        faces = self._detect(image)
        return faces[0] if faces else None


def find_class_root(folder: Path, depth: int = 3) -> Path:
    """The folder that holds the emotion-named class folders.

    That is `folder` itself, or the single folder it wraps them in, followed down a few levels:
    zipping a folder ("compress this folder") puts the class folders one level down, and an
    upload adds the zip's own name as another.
    """
    current = folder
    for _ in range(depth):
        subs = [p for p in current.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
        if len(subs) != 1 or any(canonical_emotion(p.name) for p in subs):
            return current
        current = subs[0]
    return current


def _images_below(folder: Path) -> list[Path]:
    """Regular image files below `folder`, sorted; linked folders below it are not followed (no
    loops) and the kernel's special file systems are never walked."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not is_special_folder(Path(top, d)))
        found.extend(Path(top, f) for f in files if is_image_path(Path(f)) and Path(top, f).is_file())
    return sorted(found)


def _class_items(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(image path, label) for every image under emotion-named folders, and the other folder names."""
    if not root.is_dir():
        raise DatasetError(f"Dataset folder not found. Received: path={str(root)!r}")
    root = find_class_root(root)
    items: list[tuple[Path, int]] = []
    unknown: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        emotion = canonical_emotion(sub.name)
        if emotion is None:
            unknown.append(sub.name)
            continue
        label = EMOTIONS.index(emotion)
        if root.resolve().is_relative_to(sub.resolve()):
            raise DatasetError(
                f"class folder {sub.name!r} under {str(root)!r} links to a folder that holds the set itself "
                f"({str(sub.resolve())!r}); link it to its own images"
            )
        items.extend((p, label) for p in _images_below(sub))
    if not items:
        found = ", ".join(unknown) if unknown else "none"
        raise DatasetError(
            f"No images in class folders named after emotions under {str(root)!r}. "
            f"Expected sub-folders such as {', '.join(EMOTIONS)}. Unrecognised folders: {found}"
        )
    return items, unknown


def load_class_folders(
    root: str | Path, spec: Preprocessing = Preprocessing(), workers: int = 4, max_pixels: int = MAX_PIXELS
) -> LabeledFaces:
    """Load `root/<class>/**/*.jpg|png|...` face crops or photos (see the module's rule).

    Class folder names may be emotions or common aliases ("anger", "happiness", "0").

    Raises:
        DatasetError: root is not a folder, or no folder names a known emotion.
    """
    root = Path(root)
    items, unknown = _class_items(root)
    data = _load_items(items, root, spec, workers, max_pixels)
    data.unknown_classes = unknown
    return data


def _load_items(
    items: list[tuple[Path, int]], root: Path, spec: Preprocessing, workers: int = 4, max_pixels: int = MAX_PIXELS
) -> LabeledFaces:
    cropper = _FaceCropper(spec)

    def load(item: tuple[Path, int]):
        try:
            return *cropper(read_image(item[0], max_pixels)), None
        except (ImageReadError, ValueError) as e:
            return None, False, str(e)

    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(load, items, chunksize=256))
    images, labels, sources, errors = [], [], [], []
    for (path, label), (crop, _, err) in zip(items, decoded):
        rel = str(path.relative_to(root))
        if crop is None:
            errors.append((rel, err))
            continue
        images.append(crop)
        labels.append(label)
        sources.append(rel)
    data = _assemble(images, labels, sources, errors, [], [], spec)
    data.photos_cropped = sum(1 for crop, photo, _ in decoded if crop is not None and photo)
    data.photos_without_face = sum(1 for _, _, err in decoded if err == NO_FACE)
    return data


@dataclass
class SetSummary:
    """What a labelled set holds, counted from its file names (or CSV labels) without decoding it.

    Attributes:
        counts: items per emotion, every emotion listed.
        unknown_classes: folder names that are not an emotion (skipped).
        samples: a few decoded items of each class (the first ones), for a look.
    """

    counts: dict[str, int]
    unknown_classes: list[str]
    samples: LabeledFaces

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def summarize_labelled(source: str | Path, spec: Preprocessing = Preprocessing(), per_class: int = 3) -> SetSummary:
    """Counts per class and a few samples of a labelled set, fast even for FER-2013's 28,709 images.

    Raises:
        DatasetError: as `load_labeled`.
    """
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        data = load_fer_csv(source, spec=spec)
        keep = np.concatenate([np.flatnonzero(data.labels == c)[:per_class] for c in range(NUM_CLASSES)])
        return SetSummary(data.class_counts(), [], data.subset(np.sort(keep).astype(int)))
    items, unknown = _class_items(source)
    counts = dict.fromkeys(EMOTIONS, 0)
    chosen: list[tuple[Path, int]] = []
    for path, label in items:
        counts[EMOTIONS[label]] += 1
        if counts[EMOTIONS[label]] <= per_class:
            chosen.append((path, label))
    return SetSummary(counts, unknown, _load_items(chosen, source, spec))


def _assemble(images, labels, sources, errors, unknown, usage, spec) -> LabeledFaces:
    stacked = np.stack(images) if images else np.empty((0, *spec.crop_shape), np.uint8)
    return LabeledFaces(stacked, np.asarray(labels, dtype=np.int64), sources, errors, unknown, usage, spec=spec)


def load_fer_csv(path: str | Path, usage: str | None = None, spec: Preprocessing = Preprocessing()) -> LabeledFaces:
    """Load the FER-2013 CSV (`emotion,pixels,Usage`; Usage optional).

    Args:
        path: the CSV file.
        usage: keep only rows with this Usage value (e.g. "PublicTest"); None keeps all.

    Raises:
        DatasetError: the file is missing or its header lacks `emotion` and `pixels`.
        Malformed rows are skipped and listed in `errors` with their row number.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"CSV file not found. Received: path={str(path)!r}")
    images, labels, sources, errors, usages = [], [], [], [], []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"emotion", "pixels"} <= set(reader.fieldnames):
            raise DatasetError(f"CSV header must contain 'emotion' and 'pixels'. Received: header={reader.fieldnames}")
        for row_number, row in enumerate(reader, start=2):
            row_usage = (row.get("Usage") or "").strip()
            if usage is not None and row_usage != usage:
                continue
            source = f"{path.name}:{row_number}"
            try:
                crop, label = _parse_fer_row(row, spec)
            except ValueError as e:
                errors.append((source, f"row {row_number}: {e}"))
                continue
            images.append(crop)
            labels.append(label)
            sources.append(source)
            usages.append(row_usage)
    return _assemble(images, labels, sources, errors, [], usages, spec)


def _parse_fer_row(row: dict, spec: Preprocessing) -> tuple[np.ndarray, int]:
    emotion = canonical_emotion(str(row.get("emotion") or ""))
    if emotion is None:
        raise ValueError(f"unknown emotion label {row.get('emotion')!r}")
    pixel_text = (row.get("pixels") or "").split()
    side = int(round(len(pixel_text) ** 0.5))
    if side == 0 or side * side != len(pixel_text):
        raise ValueError(f"'pixels' must hold a square image; got {len(pixel_text)} values")
    try:
        values = np.asarray([int(v) for v in pixel_text])
    except ValueError as e:
        raise ValueError("'pixels' holds a value that is not an integer") from e
    if values.min() < 0 or values.max() > 255:
        raise ValueError("'pixels' values must lie in 0..255")
    crop = preprocess_face(values.astype(np.uint8).reshape(side, side), None, spec)
    return crop, EMOTIONS.index(emotion)


def load_unlabelled_faces(
    folders: list[str | Path],
    spec: Preprocessing | CompositePreprocessing,
    max_images: int | None = None,
    workers: int = 4,
) -> LabeledFaces:
    """The largest face of every image below `folders` (any layout), for a teacher to label.

    Every image goes through the detector, whatever its size (aligned sets such as UTKFace or
    CelebA frame faces differently from FER-2013, and the student must see faces as inference
    crops them). Files with the same bytes count once; images without a face are left out and
    counted in `errors`. Labels are all 0: the set has none, and its targets come from teachers.

    Raises:
        DatasetError: a folder is missing or holds no image.
    """
    paths: list[Path] = []
    seen: set[str] = set()
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise DatasetError(f"unlabelled faces: {str(folder)!r} is not a folder")
        for path in sorted(folder.rglob("*")):
            if not (is_image_path(path) and path.is_file()) or any(p.startswith(".") for p in path.parts[-2:]):
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                paths.append(path)
            if max_images and len(paths) >= max_images:
                break
    if not paths:
        raise DatasetError(f"unlabelled faces: no image under {[str(f) for f in folders]}")
    cropper = _FaceCropper(spec, always_detect=True)

    def load(path: Path):
        try:
            return cropper(read_image(path))[0], None
        except (ImageReadError, ValueError) as e:
            return None, str(e)

    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(load, paths, chunksize=64))
    kept = [(str(p), c) for p, (c, _) in zip(paths, decoded) if c is not None]
    errors = [(str(p), e) for p, (c, e) in zip(paths, decoded) if c is None]
    images = [c for _, c in kept]
    return _assemble(images, [0] * len(images), [s for s, _ in kept], errors, [], [], spec)


def concat_labelled(sets: list[LabeledFaces]) -> LabeledFaces:
    """Several labelled sets of the same crops as one (sources keep their own names; errors are kept)."""
    return LabeledFaces(
        images=np.concatenate([d.images for d in sets]),
        labels=np.concatenate([d.labels for d in sets]),
        sources=[s for d in sets for s in d.sources],
        errors=[e for d in sets for e in d.errors],
        photos_cropped=sum(d.photos_cropped for d in sets),
        photos_without_face=sum(d.photos_without_face for d in sets),
        spec=sets[0].spec,
    )


def load_labeled(source: str | Path, spec: Preprocessing = Preprocessing(), usage: str | None = None) -> LabeledFaces:
    """Load class folders or a FER CSV, chosen by what `source` is."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        return load_fer_csv(source, usage=usage, spec=spec)
    return load_class_folders(source, spec=spec)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified (train, validation) split with a fixed seed.

    Falls back to a plain shuffled split when a class is too rare to stratify.
    """
    index = np.arange(len(labels))
    if val_fraction <= 0:
        return index, index[:0]
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train_idx, val_idx = train_test_split(index, test_size=val_fraction, random_state=seed, stratify=stratify)
    return np.sort(train_idx), np.sort(val_idx)


def train_val_split(
    source: str | Path,
    val_fraction: float,
    seed: int,
    spec: Preprocessing = Preprocessing(),
    max_images: int | None = None,
) -> tuple[LabeledFaces, LabeledFaces]:
    """Load a labelled set and split it the way training does (stratified, seeded).

    Used by training and by the Train page's comparison, so both see the same validation images.
    Class folders are split by their file list before any image is decoded, so a file that
    cannot be read never moves another face between the splits.
    """
    return _split(source, val_fraction, seed, spec, max_images, keep_train=True)


def validation_split(
    source: str | Path,
    val_fraction: float,
    seed: int,
    spec: Preprocessing = Preprocessing(),
    max_images: int | None = None,
) -> LabeledFaces:
    """Only the validation faces of `train_val_split`: for class folders, only they are decoded
    (FER-2013's 2,871 of 28,709), which makes measuring a model on its split ten times faster."""
    return _split(source, val_fraction, seed, spec, max_images, keep_train=False)[1]


def _split(source, val_fraction, seed, spec, max_images, keep_train: bool) -> tuple[LabeledFaces, LabeledFaces]:
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".csv":
        data = load_fer_csv(path, spec=spec)
        if max_images and len(data) > max_images:
            keep, _ = stratified_split(data.labels, 1 - max_images / len(data), seed)
            data = data.subset(keep)
        train_idx, val_idx = stratified_split(data.labels, val_fraction, seed)
        return data.subset(train_idx), data.subset(val_idx)
    items, unknown = _class_items(path)
    labels = np.asarray([label for _, label in items], dtype=np.int64)
    index = np.arange(len(items))
    if max_images and len(items) > max_images:
        index, _ = stratified_split(labels, 1 - max_images / len(items), seed)
    train_idx, val_idx = stratified_split(labels[index], val_fraction, seed)
    parts = []
    for chosen in (train_idx if keep_train else train_idx[:0], val_idx):
        part = _load_items([items[i] for i in index[chosen]], path, spec)
        part.unknown_classes = unknown
        parts.append(part)
    return parts[0], parts[1]

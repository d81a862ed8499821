"""Batch labelling of uploaded photos: safe unpacking, results, exports, corrections datasets.

Uploads land in a work folder owned by one browser session; nothing is ever written
outside it (zip entries with absolute paths or `..` are refused).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.imageio import ImageReadError, encode_jpeg, read_image
from fer_core.labeling import COLUMNS, file_source, label_sources, spreadsheet_safe
from fer_core.names import unique_name
from fer_core.preprocess import Preprocessing, preprocess_face
from fer_core.recognizer import EmotionRecognizer
from fer_core.render import annotate, thumbnail
from fer_core.types import Box


@dataclass(frozen=True)
class UploadLimits:
    """Caps on what one batch may unpack."""

    max_files: int = 5000
    max_total_bytes: int = 2 << 30
    max_pixels: int = 40_000_000


@dataclass
class Upload:
    """One uploaded photo, stored in the session's work folder under its relative path."""

    name: str
    path: Path


def safe_relative_path(name: str) -> str | None:
    """A clean relative POSIX path for an upload or zip entry name; None when it is unsafe."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def _store(work_dir: Path, rel: str, data: bytes) -> Path:
    target = (work_dir / rel).resolve()
    if not target.is_relative_to(work_dir.resolve()):
        raise ValueError(f"refusing to write outside the work folder: {rel}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def unpack_uploads(
    files: Iterable[tuple[str, bytes]], work_dir: Path, limits: UploadLimits = UploadLimits()
) -> tuple[list[Upload], list[dict]]:
    """Store uploaded files (zips unpacked, folders kept) in `work_dir`.

    Returns:
        (uploads to label, rejected rows with status "unreadable" and the reason).
    """
    uploads: list[Upload] = []
    rejected: list[dict] = []
    budget = {"files": limits.max_files, "bytes": limits.max_total_bytes}

    def reject(name: str, reason: str) -> None:
        row = dict.fromkeys(COLUMNS, "")
        row.update(file=name, status="unreadable", detail=reason)
        rejected.append(row)

    stored: set[str] = set()

    def add(name: str, data: bytes) -> None:
        rel = safe_relative_path(name)
        if rel is None:
            return reject(name, "unsafe path (absolute or with ..); skipped")
        if budget["files"] <= 0:
            return reject(rel, f"over the limit of {limits.max_files} files per batch; skipped")
        if len(data) > budget["bytes"]:
            return reject(rel, "over the batch's total size limit; skipped")
        # Two cameras both make IMG_0001.jpg: keep both, the later one as "IMG_0001 (2).jpg".
        rel = unique_name(rel, stored)
        try:
            path = _store(work_dir, rel, data)
        except OSError as e:  # a name too long for the disk, a file where a folder must go...
            return reject(rel, f"cannot store this file: {e.strerror or e}")
        stored.add(rel)
        budget["files"] -= 1
        budget["bytes"] -= len(data)
        uploads.append(Upload(rel, path))

    for name, data in files:
        if name.lower().endswith(".zip"):
            _unpack_zip(name, data, add, reject, budget)
        else:
            add(name, data)
    return uploads, rejected


def _unpack_zip(name: str, data: bytes, add, reject, budget: dict) -> None:
    prefix = PurePosixPath(name).stem
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return reject(name, "not a valid zip archive")
    with archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        declared = sum(e.file_size for e in entries)
        if declared > budget["bytes"] or len(entries) > budget["files"]:
            return reject(name, f"zip holds {len(entries)} files / {declared:,} bytes uncompressed, over the limits")
        for entry in entries:
            entry_name = f"{prefix}/{entry.filename}"
            if safe_relative_path(entry.filename) is None:
                reject(entry_name, "unsafe path in zip (absolute or with ..); skipped")
            elif entry.filename.lower().endswith(".zip"):
                reject(entry_name, "nested zip ignored")
            elif entry.filename.startswith("__MACOSX/") or PurePosixPath(entry.filename).name.startswith("."):
                continue
            else:
                try:
                    # Read at most the declared size + 1 so a lying header cannot inflate past the cap.
                    with archive.open(entry) as f:
                        content = f.read(entry.file_size + 1)
                except Exception as e:  # damaged deflate/LZMA data, encrypted or unknown compression...
                    reject(entry_name, f"cannot extract: {type(e).__name__}: {e}")
                    continue
                if len(content) > entry.file_size:
                    reject(entry_name, "zip entry larger than its header says; skipped")
                    continue
                add(entry_name, content)


def label_uploads(
    uploads: list[Upload],
    recognizer: EmotionRecognizer,
    max_pixels: int = 40_000_000,
    on_image: Callable[[str, list[dict]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Label stored uploads with the same row format as `python -m fer_core label`."""
    items = [(u.name, file_source(u.path)) for u in uploads]
    return list(label_sources(items, recognizer, max_pixels=max_pixels, on_image=on_image, should_stop=should_stop))


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with the CLI's columns (plus any extra columns such as `corrected`)."""
    extra = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS + extra, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(map(spreadsheet_safe, rows))
    return out.getvalue()


def rows_to_json(rows: list[dict]) -> str:
    """JSON list of row objects with the same keys as the CSV."""
    return json.dumps([{k: (None if v == "" else v) for k, v in r.items()} for r in rows], indent=1)


def _box(row: dict) -> Box | None:
    if row.get("x") in ("", None):
        return None
    return Box(int(row["x"]), int(row["y"]), int(row["w"]), int(row["h"]))


class _Face:
    """Minimal face record for drawing a results row."""

    def __init__(self, row: dict):
        self.box = _box(row)
        self.emotion = row["emotion"]
        self.confidence = float(row["confidence"])
        self.probabilities = np.array([float(row[f"p_{e}"]) for e in EMOTIONS])


def _group(rows: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["file"], []).append(row)
    return grouped


def annotated_image(path: Path, rows: list[dict], max_side: int | None = None) -> np.ndarray:
    """The photo with its labelled faces drawn (optionally shrunk)."""
    image = read_image(path)
    faces = [_Face(r) for r in rows if _box(r) is not None]
    drawn = annotate(image, faces, show_probabilities=False)
    return thumbnail(drawn, max_side) if max_side else drawn


def annotated_zip(rows: list[dict], files: dict[str, Path]) -> bytes:
    """A zip of every readable photo with its faces drawn, under the original relative paths."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, mine in _group(rows).items():
            if name in files and mine[0]["status"] != "unreadable":
                z.writestr(
                    str(PurePosixPath(name).with_suffix(".jpg")), encode_jpeg(annotated_image(files[name], mine))
                )
    return buf.getvalue()


def sorted_zip(rows: list[dict], files: dict[str, Path]) -> bytes:
    """A zip with each photo in the folder of its first face's emotion (or `no_face/`)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, mine in _group(rows).items():
            first = mine[0]
            if name not in files or first["status"] == "unreadable":
                continue
            folder = first["emotion"] if first["status"] != "no_face" else "no_face"
            z.writestr(f"{folder}/{name}", files[name].read_bytes())
    return buf.getvalue()


def save_corrections_dataset(
    rows: list[dict], files: dict[str, Path], out_dir: Path, spec: Preprocessing = Preprocessing()
) -> dict[str, int]:
    """Write each labelled face crop into `out_dir/<emotion>/`, with a manifest.csv.

    Crops are made by the one preprocessing function inference uses (`preprocess_face` with
    the model's `spec`), so a model trained on them sees faces exactly as it will in use; the
    dataset loader takes such small crops as they are.

    `rows` carry the final label in `emotion` and the model's in `predicted` (when corrected).

    Returns:
        Crops written per emotion.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(EMOTIONS, 0)
    manifest = []
    images: dict[str, np.ndarray] = {}
    for row in rows:
        box = _box(row)
        if box is None or row["emotion"] not in EMOTIONS or row["file"] not in files:
            continue
        try:
            image = images.setdefault(row["file"], read_image(files[row["file"]]))
        except ImageReadError:
            continue
        stem = PurePosixPath(row["file"]).with_suffix("").as_posix().replace("/", "__")
        rel = f"{row['emotion']}/{stem}__face{row['face']}.png"
        (out_dir / row["emotion"]).mkdir(exist_ok=True)
        cv2.imwrite(str(out_dir / rel), preprocess_face(image, box, spec))
        counts[row["emotion"]] += 1
        manifest.append(
            {
                "crop": rel,
                "source": row["file"],
                "face": row["face"],
                "x": box.x,
                "y": box.y,
                "w": box.w,
                "h": box.h,
                "label": row["emotion"],
                "predicted": row.get("predicted", row["emotion"]),
                "corrected": bool(row.get("corrected", False)),
            }
        )
    with (out_dir / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(manifest[0]) if manifest else ["crop"])
        writer.writeheader()
        writer.writerows(manifest)
    (out_dir / "dataset.json").write_text(
        json.dumps(
            {
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "counts": counts,
                "corrected": sum(m["corrected"] for m in manifest),
            },
            indent=2,
        )
    )
    return counts

"""Exports of result rows: CSV, JSON, annotated photos and photos sorted by emotion (zips)."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.imageio import encode_jpeg, read_image
from fer_core.names import unique_name
from fer_core.render import annotate, thumbnail
from fer_core.rows import COLUMNS, is_face, label_of, row_box, spreadsheet_safe, typed


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with the CLI's columns (plus review columns such as `label`, `corrected`)."""
    extra = [k for k in (rows[0] if rows else {}) if k not in COLUMNS]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS + extra, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(spreadsheet_safe(typed(r)) for r in rows)
    return out.getvalue()


def rows_to_json(rows: list[dict]) -> str:
    """JSON list of row objects with the same keys as the CSV; numbers as numbers, gaps as null."""
    return json.dumps([typed(r) for r in rows], indent=1)


class _Face:
    """A results row as `render.annotate` draws it: the label after review when a person
    corrected it (no model confidence then), else the model's emotion and confidence."""

    def __init__(self, row: dict):
        self.box = row_box(row)
        corrected = typed(row).get("corrected")
        self.emotion = label_of(row)
        self.confidence = None if corrected else float(row["confidence"])
        self.probabilities = np.array([float(row[f"p_{e}"]) for e in EMOTIONS])


def _group(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows by photo, photos in name order."""
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row["file"], []).append(row)
    return dict(sorted(grouped.items()))


def annotated_image(path: Path, rows: list[dict], max_side: int | None = None) -> np.ndarray:
    """The photo with its labelled faces drawn (optionally shrunk)."""
    image = read_image(path)
    faces = [_Face(r) for r in rows if row_box(r) is not None]
    drawn = annotate(image, faces, show_probabilities=False)
    return thumbnail(drawn, max_side) if max_side else drawn


def annotated_files(rows: list[dict], files: dict[str, Path]) -> Iterator[tuple[str, bytes]]:
    """(relative name, JPEG bytes) of every readable photo with its faces drawn, under its own relative path.

    A JPEG keeps its name; another photo gets `.jpg` after its own (`x.png` -> `x.png.jpg`), so
    `x.jpg`, `x.jpeg` and `x.png` stay three files; any clash left (names that differ only in
    case) gets a number.
    """
    taken: set[str] = set()
    folded: set[str] = set()
    for name, mine in _group(rows).items():
        if name in files and mine[0]["status"] != "unreadable":
            target = name if PurePosixPath(name).suffix.lower() in (".jpg", ".jpeg") else f"{name}.jpg"
            if target.casefold() in folded:
                target = unique_name(target, taken)
            taken.add(target)
            folded.add(target.casefold())
            yield target, encode_jpeg(annotated_image(files[name], mine))


def sorted_files(rows: list[dict], files: dict[str, Path]) -> Iterator[tuple[str, bytes]]:
    """(relative name, original bytes) of every readable photo in the folder of its first face's label
    (or `no_face/`)."""
    for name, mine in _group(rows).items():
        first = mine[0]
        if name not in files or first["status"] == "unreadable":
            continue
        folder = label_of(first) if is_face(first) else "no_face"
        yield f"{folder}/{name}", files[name].read_bytes()


def annotated_zip(rows: list[dict], files: dict[str, Path]) -> bytes:
    """A zip of every readable photo with its faces drawn, under the original relative paths."""
    return _zip(annotated_files(rows, files))


def sorted_zip(rows: list[dict], files: dict[str, Path]) -> bytes:
    """A zip with each photo in the folder of its first face's label (or `no_face/`)."""
    return _zip(sorted_files(rows, files))


def _zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            entry = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            entry.external_attr = 0o100644 << 16  # a regular file readable by all, as any unzip expects
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return buf.getvalue()

"""Labelling many photos: one results row per face, shared by the CLI and the Batch page.

Row columns are `file,face,x,y,w,h,emotion,confidence,p_<emotion>...,status,detail`;
`status` is "ok", "low_confidence", "no_face" or "unreadable" (reason in `detail`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fer_core.classes import EMOTIONS
from fer_core.imageio import ImageReadError, is_image_path, read_image
from fer_core.recognizer import EmotionRecognizer
from fer_core.types import FaceResult

PROB_COLUMNS = [f"p_{name}" for name in EMOTIONS]
COLUMNS = ["file", "face", "x", "y", "w", "h", "emotion", "confidence", *PROB_COLUMNS, "status", "detail"]
STATUSES = ("ok", "low_confidence", "no_face", "unreadable")

ImageSource = Callable[[], bytes | np.ndarray]
"""Something that yields a photo's bytes (or an already decoded BGR image) when called."""


def face_rows(name: str, faces: list[FaceResult]) -> list[dict]:
    """Result rows for one decoded photo (a single `no_face` row when it has none)."""
    if not faces:
        return [_empty_row(name, "no_face", "no face detected")]
    rows = []
    for i, face in enumerate(faces):
        low = "low_confidence" in face.flags
        row = {
            "file": name,
            "face": i,
            "x": face.box.x,
            "y": face.box.y,
            "w": face.box.w,
            "h": face.box.h,
            "emotion": face.emotion,
            "confidence": round(face.confidence, 4),
            "status": "low_confidence" if low else "ok",
            "detail": f"top probability {face.confidence:.2f}" if low else "",
        }
        row.update({col: round(float(p), 4) for col, p in zip(PROB_COLUMNS, face.probabilities)})
        rows.append(row)
    return rows


def _empty_row(name: str, status: str, detail: str) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    row.update(file=name, status=status, detail=detail)
    return row


def _decode(source: ImageSource, max_pixels: int | None) -> np.ndarray:
    data = source()
    if isinstance(data, np.ndarray):
        return data
    return read_image(data) if max_pixels is None else read_image(data, max_pixels=max_pixels)


def label_sources(
    items: Iterable[tuple[str, ImageSource]],
    recognizer: EmotionRecognizer,
    chunk: int = 16,
    max_pixels: int | None = None,
    on_image: Callable[[str, list[dict]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[dict]:
    """Label photos in chunks, batching every face of a chunk through the classifier.

    Args:
        items: (name, source) pairs; names appear in the `file` column.
        recognizer: detector + classifier.
        chunk: photos decoded and classified together.
        max_pixels: pixel limit for decoding (None = the reader's default).
        on_image: called with each photo's rows as soon as they exist.
        should_stop: polled between chunks; True ends the run early.

    Yields:
        Result rows in input order. A bad photo yields an `unreadable` row; nothing raises.
    """
    items = list(items)
    with ThreadPoolExecutor(2) as pool:
        for start in range(0, len(items), chunk):
            if should_stop and should_stop():
                return
            part = items[start : start + chunk]
            decoded = list(pool.map(lambda it: _safe_decode(it[1], max_pixels), part))
            good = [(i, img) for i, (img, _) in enumerate(decoded) if img is not None]
            analyzed = dict(zip([i for i, _ in good], recognizer.analyze_many([img for _, img in good])))
            for i, (name, _) in enumerate(part):
                img, error = decoded[i]
                rows = [_empty_row(name, "unreadable", error)] if img is None else face_rows(name, analyzed[i])
                if on_image:
                    on_image(name, rows)
                yield from rows


def _safe_decode(source: ImageSource, max_pixels: int | None) -> tuple[np.ndarray | None, str]:
    try:
        return _decode(source, max_pixels), ""
    except ImageReadError as e:
        return None, str(e)
    except OSError as e:
        return None, f"cannot read file: {e}"


def folder_images(root: Path) -> list[Path]:
    """Image files below `root` (recursive, sorted, hidden files skipped)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and is_image_path(p) and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _done_files(out_csv: Path) -> set[str]:
    """Files already labelled in an earlier run; drops a half-written last line."""
    if not out_csv.is_file() or out_csv.stat().st_size == 0:
        return set()
    lines = out_csv.read_text().splitlines(keepends=True)
    rows = list(csv.reader(lines))
    if rows and rows[0] != COLUMNS:
        raise ValueError(f"{out_csv} exists with other columns; choose another --out or delete it")
    complete = [line for line, row in zip(lines, rows) if len(row) == len(COLUMNS)]
    if len(complete) != len(lines) or (lines and not lines[-1].endswith("\n")):
        out_csv.write_text("".join(line if line.endswith("\n") else line + "\n" for line in complete))
    return {row[0] for row in rows[1:] if len(row) == len(COLUMNS)}


def label_folder(
    root: Path,
    out_csv: Path,
    recognizer: EmotionRecognizer,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Label every image below `root` into `out_csv`, resuming where an earlier run stopped.

    Returns:
        Counts of rows written this time, per status.
    """
    images = folder_images(root)
    done = _done_files(out_csv)
    todo = [p for p in images if p.relative_to(root).as_posix() not in done]
    counts = dict.fromkeys(STATUSES, 0)
    new_file = not out_csv.exists() or out_csv.stat().st_size == 0
    with out_csv.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        finished = len(images) - len(todo)

        def write_image(name: str, rows: list[dict]) -> None:
            nonlocal finished
            writer.writerows(rows)
            f.flush()
            finished += 1
            if progress:
                progress(finished, len(images))

        items = [(p.relative_to(root).as_posix(), p.read_bytes) for p in todo]
        for row in label_sources(items, recognizer, on_image=write_image):
            counts[row["status"]] += 1
    return counts

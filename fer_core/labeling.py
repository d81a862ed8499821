"""Labelling many photos into result rows (`fer_core.rows`), shared by the CLI and the Batch page.

`label_sources` labels any photos; `label_folder` labels a folder into a CSV, resumably.
"""

from __future__ import annotations

import csv
import fcntl
import io
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fer_core.imageio import ImageReadError, is_image_path, read_image, unsupported_format
from fer_core.recognizer import EmotionRecognizer, FoundFaces
from fer_core.rows import COLUMNS, STATUSES, empty_row, face_rows, spreadsheet_safe

ImageSource = Callable[[], bytes | np.ndarray]
"""Something that yields a photo's bytes (or an already decoded BGR image) when called."""


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

    def find(item: tuple[str, ImageSource]) -> tuple[FoundFaces | None, str]:
        # Each worker holds one decoded photo at a time and keeps only its face crops.
        image, error = _safe_decode(item[1], max_pixels)
        if image is None:
            return None, error
        try:
            return recognizer.find_faces(image), ""
        except Exception as e:  # one odd photo (e.g. a 5000x3 strip) never stops the batch
            return None, f"face detection failed: {type(e).__name__}: {e}"

    with ThreadPoolExecutor(2) as pool:
        for start in range(0, len(items), chunk):
            if should_stop and should_stop():
                return
            part = items[start : start + chunk]
            found = list(pool.map(find, part))
            good = [i for i, (faces, _) in enumerate(found) if faces is not None]
            analyzed = dict(zip(good, recognizer.classify_found([found[i][0] for i in good])))
            for i, (name, _) in enumerate(part):
                error = found[i][1]
                rows = [empty_row(name, "unreadable", error)] if i not in analyzed else face_rows(name, analyzed[i])
                if on_image:
                    on_image(name, rows)
                yield from rows


def _safe_decode(source: ImageSource, max_pixels: int | None) -> tuple[np.ndarray | None, str]:
    try:
        return _decode(source, max_pixels), ""
    except ImageReadError as e:
        return None, str(e)
    except OSError as e:
        return None, f"cannot read file: {e.strerror or e}"
    except MemoryError:
        return None, "not enough memory to decode this image"


def folder_images(root: Path) -> list[Path]:
    """Photo files below `root` (recursive, sorted, hidden files skipped).

    Files of formats we cannot read (HEIC, raw) and image names that are not regular files
    (a broken link, a link loop) are listed too, so each gets a row saying why it was not read.
    """
    return sorted(
        p
        for p in root.rglob("*")
        if (is_image_path(p) or unsupported_format(p))
        and not p.is_dir()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def file_source(path: Path) -> ImageSource:
    """A source reading the file's bytes, or raising the reason it cannot be read as a photo."""
    reason = unsupported_format(path)
    if reason is None:
        return path.read_bytes

    def refuse() -> bytes:
        raise ImageReadError(reason)

    return refuse


def display_name(relative: str) -> str:
    """A file name as it goes into results: bytes that are not UTF-8 shown as `\\xNN` escapes.

    File names on Linux are bytes; Python keeps undecodable ones as surrogates, which no
    UTF-8 CSV can hold, so one such file would otherwise stop every run at the same place.
    """
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _complete_rows(text: str) -> tuple[list[list[str]], int]:
    """Parse CSV text; returns the complete rows and where the last complete one ends.

    Parsed as CSV (not split into lines), so names holding line breaks of any kind stay
    whole; a row cut off by a crash (missing fields or its line end) is not complete.
    """
    consumed = 0

    def lines():
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    rows, end = [], 0
    reader = csv.reader(lines())
    try:
        for row in reader:
            if len(row) != len(COLUMNS) or not text[:consumed].endswith(("\n", "\r")):
                break
            rows.append(row)
            end = consumed
    except csv.Error:
        pass  # a quoted field cut off at the end of the file
    return rows, end


def _resume_point(out: BinaryIO, out_csv: Path) -> set[str]:
    """Files already labelled in `out_csv`; a cut-off last row is truncated away in place."""
    raw = out_csv.read_bytes()
    text = raw.decode("utf-8", "surrogateescape")
    rows, end = _complete_rows(text)
    if rows and rows[0] != COLUMNS:
        raise ValueError(f"{out_csv} exists with other columns; choose another --out or delete it")
    keep = len(text[:end].encode("utf-8", "surrogateescape"))
    if keep < len(raw):
        out.truncate(keep)
    return {row[0] for row in rows[1:]}


def _check_output(out_csv: Path) -> None:
    if out_csv.is_dir():
        raise ValueError(f"--out {out_csv} is a folder; give a CSV file name")
    if not out_csv.parent.is_dir():
        raise ValueError(f"--out {out_csv}: the folder {out_csv.parent} does not exist")


def label_folder(
    root: Path,
    out_csv: Path,
    recognizer: EmotionRecognizer,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Label every image below `root` into `out_csv`, resuming where an earlier run stopped.

    The output is locked while the run writes it, so a second run on the same file stops
    with an error instead of writing the same rows again.

    Returns:
        Counts of rows written this time, per status.

    Raises:
        ValueError: `out_csv` is a folder, has no parent folder, has other columns, or
            another run is writing it.
    """
    _check_output(out_csv)
    images = folder_images(root)
    with out_csv.open("a+b") as guard:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise ValueError(f"another `label` run is writing {out_csv}; wait for it or choose another --out") from e
        done = _resume_point(guard, out_csv)
        todo = [(display_name(p.relative_to(root).as_posix()), p) for p in images]
        # `done` holds names as written, so compare the written (spreadsheet-safe) form
        todo = [(name, p) for name, p in todo if spreadsheet_safe({"file": name})["file"] not in done]
        return _write_rows(out_csv, todo, len(images), recognizer, progress)


def _write_rows(
    out_csv: Path,
    todo: list[tuple[str, Path]],
    total: int,
    recognizer: EmotionRecognizer,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    """Append the rows of the photos in `todo` to `out_csv` (header first when it is empty)."""
    counts = dict.fromkeys(STATUSES, 0)
    new_file = out_csv.stat().st_size == 0
    with out_csv.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        finished = total - len(todo)

        def write_image(name: str, rows: list[dict]) -> None:
            nonlocal finished
            writer.writerows(map(spreadsheet_safe, rows))
            f.flush()
            finished += 1
            if progress:
                progress(finished, total)

        items = [(name, file_source(p)) for name, p in todo]
        for row in label_sources(items, recognizer, on_image=write_image):
            counts[row["status"]] += 1
    return counts

"""Labelling many photos into result rows (`fer_core.rows`), shared by the CLI and the Batch page.

`label_sources` labels any photos; `label_folder` labels a folder into a CSV, resumably.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np

from fer_core.imageio import ImageReadError, is_image_path, read_image, unsupported_format
from fer_core.recognizer import EmotionRecognizer, FoundFaces, RecognizerSpec
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


def _is_photo_name(name: str) -> bool:
    path = Path(name)
    return is_image_path(path) or unsupported_format(path) is not None


def iter_folder_images(root: Path) -> Iterator[Path]:
    """Photo files below `root`, walked lazily in a fixed order (names sorted within each folder;
    a folder's files before its sub-folders), hidden files and folders skipped.

    Files of formats we cannot read (HEIC, raw) and image names that are not regular files
    (a broken link, a link loop) are listed too, so each gets a row saying why it was not read.
    Nothing is held for the whole walk but the folders still to visit.
    """
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows links; a link loop is not a folder
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(Path(entry.path))
            elif _is_photo_name(entry.name):
                yield Path(entry.path)
        stack.extend(reversed(subfolders))


def folder_images(root: Path) -> list[Path]:
    """`iter_folder_images` as a list (for small folders)."""
    return list(iter_folder_images(root))


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


def name_key(name: str) -> int:
    """A 64-bit key of a file name as written in results: the resume set holds these, not names,
    so resuming a run over a million photos keeps a few tens of MB."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")


def _resume_point(out: BinaryIO, out_csv: Path) -> set[int]:
    """Keys (`name_key`) of the files already labelled in `out_csv`; a cut-off last row is
    truncated away in place."""
    raw = out_csv.read_bytes()
    text = raw.decode("utf-8", "surrogateescape")
    rows, end = _complete_rows(text)
    if rows and rows[0] != COLUMNS:
        raise ValueError(f"{out_csv} exists with other columns; choose another --out or delete it")
    keep = len(text[:end].encode("utf-8", "surrogateescape"))
    if keep < len(raw):
        out.truncate(keep)
    return {name_key(row[0]) for row in rows[1:]}


def _check_output(out_csv: Path) -> None:
    if out_csv.is_dir():
        raise ValueError(f"--out {out_csv} is a folder; give a CSV file name")
    if not out_csv.parent.is_dir():
        raise ValueError(f"--out {out_csv}: the folder {out_csv.parent} does not exist")


def label_folder(
    root: Path,
    out_csv: Path,
    recognizer: EmotionRecognizer | RecognizerSpec,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Label every image below `root` into `out_csv`, resuming where an earlier run stopped.

    The folder is walked lazily and rows are written photo by photo in walk order, whatever
    the number of workers, so memory stays flat and a killed run resumes without losing or
    repeating a photo. The output is locked while the run writes it, so a second run on the
    same file stops with an error instead of writing the same rows again.

    Args:
        recognizer: a recognizer, or with `workers` > 1 the `RecognizerSpec` each worker
            process builds its own from.
        workers: processes labelling at once (1: this process).

    Returns:
        Counts of rows written this time, per status.

    Raises:
        ValueError: `out_csv` is a folder, has no parent folder, has other columns, or
            another run is writing it.
    """
    _check_output(out_csv)
    total = sum(1 for _ in iter_folder_images(root))  # a counting pass, for the progress bar
    with out_csv.open("a+b") as guard:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise ValueError(f"another `label` run is writing {out_csv}; wait for it or choose another --out") from e
        done = _resume_point(guard, out_csv)
        # `done` holds keys of names as written, so compare the written (spreadsheet-safe) form
        todo = (
            (name, path)
            for path in iter_folder_images(root)
            for name in [display_name(path.relative_to(root).as_posix())]
            if name_key(spreadsheet_safe({"file": name})["file"]) not in done
        )
        already = min(len(done), total)
        if workers > 1:
            spec = recognizer if isinstance(recognizer, RecognizerSpec) else RecognizerSpec.of(recognizer)
            results = _labelled_in_processes(todo, spec, workers)
        else:
            built = recognizer.build() if isinstance(recognizer, RecognizerSpec) else recognizer
            results = _labelled_here(todo, built)
        return _write_rows(out_csv, results, already, total, progress)


CHUNK = 16
"""Photos per task: decoded and classified together."""


def _chunks(items: Iterable[tuple[str, Path]], size: int = CHUNK) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    for name, path in items:
        chunk.append((name, str(path)))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _label_chunk(chunk: list[tuple[str, str]], recognizer: EmotionRecognizer) -> list[tuple[str, list[dict]]]:
    """(name, rows) of each photo of a chunk, in order."""
    per_photo: list[tuple[str, list[dict]]] = []
    items = [(name, file_source(Path(path))) for name, path in chunk]
    list(label_sources(items, recognizer, chunk=len(items), on_image=lambda n, rows: per_photo.append((n, rows))))
    return per_photo


def _labelled_here(todo: Iterable[tuple[str, Path]], recognizer: EmotionRecognizer) -> Iterator[tuple[str, list[dict]]]:
    for chunk in _chunks(todo):
        yield from _label_chunk(chunk, recognizer)


_WORKER_RECOGNIZER: EmotionRecognizer | None = None


def _start_worker(spec: RecognizerSpec) -> None:
    """Each worker process loads the detector and the model once."""
    global _WORKER_RECOGNIZER
    import cv2

    cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would only compete
    _WORKER_RECOGNIZER = spec.build()


def _worker_chunk(chunk: list[tuple[str, str]]) -> list[tuple[str, list[dict]]]:
    return _label_chunk(chunk, _WORKER_RECOGNIZER)


def _labelled_in_processes(
    todo: Iterable[tuple[str, Path]], spec: RecognizerSpec, workers: int
) -> Iterator[tuple[str, list[dict]]]:
    """Chunks labelled by `workers` processes, results in input order, at most 2 chunks a worker in flight."""
    import multiprocessing
    from collections import deque

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or models forked
    with context.Pool(workers, initializer=_start_worker, initargs=(spec,)) as pool:
        pending: deque = deque()
        for chunk in _chunks(todo):
            pending.append(pool.apply_async(_worker_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _write_rows(
    out_csv: Path,
    results: Iterable[tuple[str, list[dict]]],
    already: int,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    """Append each photo's rows to `out_csv` as they come (header first when it is empty)."""
    counts = dict.fromkeys(STATUSES, 0)
    new_file = out_csv.stat().st_size == 0
    finished = already
    with out_csv.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        for _, rows in results:
            writer.writerows(map(spreadsheet_safe, rows))
            f.flush()
            for row in rows:
                counts[row["status"]] += 1
            finished += 1
            if progress:
                progress(finished, total)
    return counts

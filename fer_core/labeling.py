"""Labelling many photos into result rows (`fer_core.rows`), shared by the CLI and the Batch page.

`label_sources` labels any photos; `label_folder` labels a folder into a CSV or Parquet output
(`fer_core.outputs`), resumably; `fer_core.ray_engine` does the same on a Ray cluster.
"""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fer_core.imageio import (
    ImageReadError,
    is_image_path,
    is_special_folder,
    photo_folder_problem,
    read_image,
    read_photo_bytes,
    unsupported_format,
)
from fer_core.outputs import open_output
from fer_core.recognizer import EmotionRecognizer, FoundFaces, RecognizerSpec
from fer_core.rows import STATUSES, empty_row, face_rows

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


def is_photo_name(name: str) -> bool:
    """Whether a file name is a photo's by its suffix: one we read, or one we can say we do not
    (HEIC, raw). Anything else (README.md, truth.json) is not a photo and is skipped, not labelled."""
    path = Path(name)
    return is_image_path(path) or unsupported_format(path) is not None


def folder_entries(folder: Path) -> tuple[list[Path], list[Path]]:
    """A folder's photo files and its sub-folders, each sorted by name, hidden ones skipped.

    Files of formats we cannot read (HEIC, raw) and image names that are not regular files
    (a broken link, a link loop) count as photos, so each gets a row saying why it was not read.
    An unreadable folder has neither.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return [], []
    files, subfolders = [], []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows links; a link loop is not a folder
        except OSError:
            is_dir = False
        if is_dir:
            subfolders.append(Path(entry.path))
        elif is_photo_name(entry.name):
            files.append(Path(entry.path))
    return files, subfolders


def iter_folder_images(root: Path) -> Iterator[Path]:
    """Photo files below `root` (see `folder_entries`), walked lazily in a fixed order: names
    sorted within each folder, a folder's files before its sub-folders.

    Nothing is held for the whole walk but the folders still to visit and the identity of those
    walked: a folder reached again through a link (a loop such as `sub/up -> ..`) is walked once,
    and /proc, /sys and /dev never.
    """
    stack = [root]
    seen: set[tuple[int, int]] = set()  # (device, inode) of every folder walked: a linked folder once
    while stack:
        folder = stack.pop()
        try:
            where = os.stat(folder)
        except OSError:
            continue
        if (where.st_dev, where.st_ino) in seen or is_special_folder(folder):
            continue
        seen.add((where.st_dev, where.st_ino))
        files, subfolders = folder_entries(folder)
        yield from files
        stack.extend(reversed(subfolders))


def file_source(path: Path, read: Callable[[], bytes] | None = None) -> ImageSource:
    """A source reading the file's bytes (with `read`, default: from the local file), or
    raising the reason it cannot be read as a photo."""
    reason = unsupported_format(path)
    if reason is None:
        return read or (lambda: read_photo_bytes(path))

    def refuse() -> bytes:
        raise ImageReadError(reason)

    return refuse


def display_name(relative: str) -> str:
    """A file name as it goes into results: bytes that are not UTF-8 shown as `\\xNN` escapes,
    and a backslash of the name itself doubled, so no two files share a name (`disk_name` undoes it).

    File names on Linux are bytes; Python keeps undecodable ones as surrogates, which no
    UTF-8 CSV can hold, so one such file would otherwise stop every run at the same place.
    """
    raw = relative.encode("utf-8", "surrogateescape").replace(b"\\", b"\\\\")
    return raw.decode("utf-8", "backslashreplace")


_ESCAPE = re.compile(r"\\\\|\\x([0-9a-f]{2})")


def disk_name(name: str) -> str:
    """The file name on disk of a name in results (the inverse of `display_name`)."""
    raw, at = bytearray(), 0
    for m in _ESCAPE.finditer(name):
        raw += name[at : m.start()].encode("utf-8", "surrogateescape")
        raw += bytes([int(m.group(1), 16)]) if m.group(1) else b"\\"
        at = m.end()
    raw += name[at:].encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "surrogateescape")


LISTING_STEP = 500  # photos counted between reports (and stop checks) of the counting pass


def label_folder(
    root: Path,
    out: Path,
    recognizer: EmotionRecognizer | RecognizerSpec,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    fmt: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    listing: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Label every image below `root` into `out`, resuming where an earlier run stopped.

    The folder is walked lazily and rows are written photo by photo in walk order, whatever
    the number of workers, so memory stays flat and a killed run resumes without losing or
    repeating a photo. The output is locked while the run writes it, so a second run on the
    same output stops with an error instead of writing the same rows again.

    Args:
        out: a CSV file, or a folder of Parquet shards (`fer_core.outputs`).
        recognizer: a recognizer, or with `workers` > 1 the `RecognizerSpec` each worker
            process builds its own from.
        workers: processes labelling at once (1: this process).
        fmt: "csv" or "parquet"; None picks by the name of `out` (`format_of`).
        should_stop: polled between photos (and every LISTING_STEP photos of the counting pass);
            True ends the run early (what is written stays, and a later run resumes from there).
        listing: called with the number of photos found so far, every LISTING_STEP of the
            counting pass (a page shows it, and a page's cancel stops the walk there).

    Returns:
        Counts of rows written this time, per status.

    Raises:
        ValueError: `root` is no folder, the file system's root or a kernel file system;
            `out` is of the wrong kind, has no parent folder, has other columns, or another run
            is writing it.
    """
    problem = photo_folder_problem(root)
    if problem:
        raise ValueError(problem)
    output = open_output(out, fmt)
    try:
        done = output.done_keys()
        total = 0  # a counting pass, for the progress bar; it reports as it goes and can be stopped
        for _ in iter_folder_images(root):
            total += 1
            if total % LISTING_STEP == 0:
                if listing:
                    listing(total)
                if should_stop and should_stop():
                    return dict.fromkeys(STATUSES, 0)
        todo = (
            (name, path)
            for path in iter_folder_images(root)
            for name in [display_name(path.relative_to(root).as_posix())]
            if output.key(name) not in done
        )
        already = min(len(done), total)
        if workers > 1:
            spec = recognizer if isinstance(recognizer, RecognizerSpec) else RecognizerSpec.of(recognizer)
            results = _labelled_in_processes(todo, spec, workers)
        else:
            built = recognizer.build() if isinstance(recognizer, RecognizerSpec) else recognizer
            results = _labelled_here(todo, built)
        counts = dict.fromkeys(STATUSES, 0)
        finished = already
        for _, rows in results:
            output.write(rows)
            for row in rows:
                counts[row["status"]] += 1
            finished += 1
            if progress:
                progress(finished, total)
            if should_stop and should_stop():
                break
        return counts
    finally:
        output.close()


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


def _label_chunk(
    chunk: list[tuple[str, str]], recognizer: EmotionRecognizer, source: Callable[[str], ImageSource] | None = None
) -> list[tuple[str, list[dict]]]:
    """(name, rows) of each photo of a chunk, in order; `source` makes each path's reader
    (default: a local file's, `file_source`)."""
    per_photo: list[tuple[str, list[dict]]] = []
    source = source or (lambda path: file_source(Path(path)))
    items = [(name, source(path)) for name, path in chunk]
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


@contextmanager
def _bare_main() -> Iterator[None]:
    """While worker processes start, the parent's `__main__` is an empty module.

    A spawned worker first runs the parent's main script again (as `__mp_main__`). Under
    `streamlit run` that is the page being run: each worker would draw the whole app headless
    (8 "missing ScriptRunContext" warnings apiece in the server log) before labelling a photo.
    The workers need nothing from it: what they run lives in this module.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _labelled_in_processes(
    todo: Iterable[tuple[str, Path]], spec: RecognizerSpec, workers: int
) -> Iterator[tuple[str, list[dict]]]:
    """Chunks labelled by `workers` processes, results in input order, at most 2 chunks a worker in flight."""
    import multiprocessing
    from collections import deque

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or models forked
    with _bare_main():
        pool = context.Pool(workers, initializer=_start_worker, initargs=(spec,))
    with pool:
        pending: deque = deque()
        for chunk in _chunks(todo):
            pending.append(pool.apply_async(_worker_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()

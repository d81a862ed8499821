"""Uploaded photos: stored safely in a session's work folder (zips unpacked), then labelled.

Nothing is ever written outside the work folder: names with absolute paths or `..` are
refused, names that clash are kept apart, and every refused file becomes a result row.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fer_core.imageio import MAX_PIXELS
from fer_core.labeling import file_source, is_photo_name, label_sources
from fer_core.names import name_from_text, unique_name
from fer_core.recognizer import EmotionRecognizer
from fer_core.rows import COLUMNS
from fer_core.settings import LOCAL_LIMITS, UploadLimits

__all__ = ["Upload", "UploadLimits", "label_uploads", "safe_relative_path", "unpack_uploads"]

# Folders inside one upload name: deeper names are refused (real photo trees are a few deep).
MAX_DEPTH = 32
# What one folder made for an upload costs against the batch's size limit (a folder's disk
# block), so names that spread a few bytes over thousands of folders meet the cap too.
FOLDER_BYTES = 4096


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
    files: Iterable[tuple[str, bytes]], work_dir: Path, limits: UploadLimits = LOCAL_LIMITS
) -> tuple[list[Upload], list[dict]]:
    """Store uploaded files (zips unpacked, folders kept) in `work_dir`.

    Files whose names are not a photo's (`is_photo_name`: a README, a JSON) are skipped, as
    `label` skips them in a folder.

    Returns:
        (uploads to label, rejected rows with status "unreadable" and the reason).
    """
    uploads: list[Upload] = []
    rejected: list[dict] = []
    # as many folders as files at most; each folder's disk block counts against the bytes
    budget = {"files": limits.max_files, "folders": limits.max_files, "bytes": limits.max_total_bytes}

    def reject(name: str, reason: str) -> None:
        row = dict.fromkeys(COLUMNS, "")
        row.update(file=name, status="unreadable", detail=reason)
        rejected.append(row)

    stored: set[str] = set()
    folders: set[str] = set()  # folders made so far, each counted once against the limits

    def add(name: str, data: bytes) -> None:
        rel = safe_relative_path(name)
        if rel is None:
            return reject(name[:300], "unsafe path (absolute or with ..); skipped")
        if not is_photo_name(rel):
            return None  # a README or a JSON beside the photos: not a photo, as `label` skips it
        depth = rel.count("/")
        if depth > MAX_DEPTH:
            return reject(f"{rel[:200]}…", f"{depth} folders deep (at most {MAX_DEPTH}); skipped")
        if budget["files"] <= 0:
            return reject(rel, f"over the limit of {limits.max_files} files per batch; skipped")
        new_folders = {str(p) for p in PurePosixPath(rel).parents if str(p) != "."} - folders
        if len(new_folders) > budget["folders"]:
            return reject(rel, f"over the limit of {limits.max_files} folders per batch; skipped")
        cost = len(data) + FOLDER_BYTES * len(new_folders)
        if cost > budget["bytes"]:
            return reject(rel, "over the batch's total size limit (folders count too); skipped")
        # Two cameras both make IMG_0001.jpg: keep both, the later one as "IMG_0001 (2).jpg".
        rel = unique_name(rel, stored)
        try:
            path = _store(work_dir, rel, data)
        except OSError as e:  # a name too long for the disk, a file where a folder must go...
            return reject(rel, f"cannot store this file: {e.strerror or e}")
        stored.add(rel)
        folders.update(new_folders)
        budget["files"] -= 1
        budget["folders"] -= len(new_folders)
        budget["bytes"] -= cost
        uploads.append(Upload(rel, path))

    for name, data in files:
        if name.lower().endswith(".zip"):
            _unpack_zip(name, data, add, reject, budget)
        else:
            add(name, data)
    uploads.sort(key=lambda u: u.name)
    rejected.sort(key=lambda r: r["file"])
    return uploads, rejected


def _unpack_zip(name: str, data: bytes, add, reject, budget: dict) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return reject(name, "not a valid zip archive")
    with archive:
        entries = sorted((e for e in archive.infolist() if not e.is_dir()), key=lambda e: e.filename)
        prefix = _zip_prefix(name, entries)
        declared = sum(e.file_size for e in entries)
        if declared > budget["bytes"] or len(entries) > budget["files"]:
            return reject(
                name,
                f"zip holds {len(entries):,} files and {declared / 1e6:,.1f} MB uncompressed; the limit is "
                f"{budget['files']:,} files and {budget['bytes'] / 1e6:,.0f} MB",
            )
        for entry in entries:
            entry_name = f"{prefix}{entry.filename}"
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
    max_pixels: int = MAX_PIXELS,
    on_image: Callable[[str, list[dict]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Label stored uploads with the same row format as `python -m fer_core label`."""
    items = [(u.name, file_source(u.path)) for u in uploads]
    return list(label_sources(items, recognizer, max_pixels=max_pixels, on_image=on_image, should_stop=should_stop))


def _zip_prefix(name: str, entries: list[zipfile.ZipInfo]) -> str:
    """What goes before each entry's path in the results: nothing when the zip holds one top
    folder (it names the set, as "compress this folder" makes), else the zip's own name."""
    paths = [PurePosixPath(e.filename) for e in entries if not e.filename.startswith("__MACOSX/")]
    tops = {p.parts[0] for p in paths if p.parts}
    wrapped = len(tops) == 1 and all(len(p.parts) > 1 for p in paths)
    # the zip's name is the browser's free text ("...zip", "C:\\x\\set.zip"): made safe, it never
    # decides whether the entries inside are
    return "" if wrapped else name_from_text(PurePosixPath(name_from_text(name)).stem, "upload") + "/"

"""The labelled-set picker shared by the Evaluate and Train pages: a folder or CSV on this
machine, a corrections dataset saved from the Batch page, or an uploaded zip of class folders."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from fer_core.paths import REPO_ROOT, corrections_dir

FER2013 = REPO_ROOT.parent / "shared" / "datasets" / "fer2013"
"""Where the FER-2013 class folders are expected (train/ and test/)."""
WILD_DEV = REPO_ROOT.parent / "shared" / "datasets" / "wild_dev"
"""Faces of real people with expression labels, where the project keeps them (for evaluating only)."""

BUILT_IN = "FER-2013 test set (built in)"
ON_MACHINE = "Folder or FER-2013 CSV on this machine"
CORRECTIONS = "Corrections dataset from the Batch page"
UPLOAD = "Upload a zip of class folders"


@dataclass(frozen=True)
class LabelledSource:
    """What the user picked: `kind` is "path" (a folder or CSV), "corrections" (a saved
    dataset's folder) or "upload" (`upload` holds the zip); `label` describes it for reports."""

    kind: str
    path: Path | None = None
    upload: object | None = None
    label: str = ""


def path_signature(path: Path) -> str:
    """Cheap change detector for a folder or file: names, sizes and times."""
    h = hashlib.sha256()
    items = [path] if path.is_file() else sorted(path.rglob("*"))
    for p in items:
        stat = p.stat()
        h.update(f"{p}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def corrections_names() -> list[str]:
    """Saved corrections datasets, by name."""
    root = corrections_dir()
    return sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []


def pick_labelled_set(
    prefix: str,
    default_path: Path,
    local: bool = True,
    max_upload_mb: int | None = None,
    built_in: Path | None = None,
) -> LabelledSource | None:
    """Radio, then the widget of the chosen kind; None until something usable is chosen.

    Widget keys are `{prefix}_source`, `{prefix}_path`, `{prefix}_corrections` and `{prefix}_zip`.
    `local` False (a public demo) offers uploads only, and `built_in` (the server's FER-2013 test
    set, when it has one): nothing else on the server is listed, and no server path is shown.
    """
    choices = [ON_MACHINE, CORRECTIONS, UPLOAD] if local else [UPLOAD]
    if not local and built_in is not None and built_in.is_dir():  # on your machine it is the path's default
        choices.append(BUILT_IN)
    how = st.radio("Labelled set", choices, horizontal=True, key=f"{prefix}_source")
    if how == BUILT_IN:
        return LabelledSource("path", built_in, label="FER-2013 test set (built in)")
    if how == ON_MACHINE:
        path = st.text_input("Path (class folders or fer2013.csv)", str(default_path), key=f"{prefix}_path")
        if not path or not Path(path).exists():
            st.warning(f"Path not found: {path}")
            return None
        return LabelledSource("path", Path(path), label=f"path: {path}")
    if how == CORRECTIONS:
        names = corrections_names()
        if not names:
            st.info("No corrections dataset saved yet: save one from the Batch page.")
            return None
        name = st.selectbox("Dataset", names, key=f"{prefix}_corrections")
        return LabelledSource("corrections", corrections_dir() / name, label=f"corrections dataset: {name}")
    upload = st.file_uploader(
        "Zip with one folder per emotion", type=["zip"], key=f"{prefix}_zip", max_upload_size=max_upload_mb
    )
    if upload is None:
        return None
    return LabelledSource("upload", upload=upload, label=f"uploaded zip: {upload.name}")

"""Batch-page helpers: the per-session work folder, the labelling loop with progress, the gallery."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core.classes import EMOTIONS
from fer_core.exports import annotated_image
from fer_core.imageio import ImageReadError, photo_folder_problem
from fer_core.labeling import disk_name, label_folder
from fer_core.outputs import read_rows
from fer_core.paths import data_dir
from fer_core.recognizer import EmotionRecognizer, RecognizerSpec
from fer_core.rows import FACE_STATUSES, typed
from fer_core.uploads import UploadLimits, label_uploads, unpack_uploads
from fer_ui.session_files import session_folder

STATE = "batch_state"


def work_dir() -> Path:
    """This browser session's folder for uploads, removed once the session ends (`session_files`)."""
    folder = session_folder() / "batch"
    folder.mkdir(exist_ok=True)
    st.session_state["batch_tmp"] = folder
    return folder


DOWNLOADS = ("annotated_zip", "sorted_zip")
"""Session keys of downloads prepared from the current batch's results."""


def forget_previous_batch() -> None:
    """Delete the last batch's stored photos and its prepared downloads.

    A session keeps one batch on disk at a time, so repeated clicks cannot pile up copies of
    the uploads, and a new batch never offers the previous one's zips.
    """
    old = st.session_state.pop(STATE, None)
    if old and old.get("dir"):
        shutil.rmtree(old["dir"], ignore_errors=True)
    for key in DOWNLOADS:
        st.session_state.pop(key, None)


class _ProgressBar:
    """A progress bar with photos/s and ETA, counted from the first photo this run labels (a
    resumed folder starts part way)."""

    def __init__(self, text: str):
        self._bar = st.progress(0.0, text=text)
        self._first: tuple[int, float] | None = None

    def show(self, done: int, total: int) -> None:
        now = time.time()
        if self._first is None:
            self._first = (done - 1, now)
        counted, elapsed = done - self._first[0], now - self._first[1]
        rate = counted / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate else 0.0
        self._bar.progress(done / max(total, 1), text=f"{done}/{total} photos · {rate:.1f} photos/s · ETA {eta:.0f} s")

    def note(self, text: str) -> None:
        self._bar.progress(0.0, text=text)

    def empty(self) -> None:
        self._bar.empty()


def run_batch(uploaded, recognizer: EmotionRecognizer, limits: UploadLimits) -> dict:
    """Unpack and label the uploads with a live progress bar; returns the batch state."""
    forget_previous_batch()
    batch_dir = Path(tempfile.mkdtemp(dir=work_dir()))
    files = [(f.name, f.getvalue()) for f in uploaded]
    uploads, rejected = unpack_uploads(files, batch_dir, limits)
    state = {
        "rows": list(rejected),
        "files": {u.name: u.path for u in uploads},
        "done": 0,
        "total": len(uploads),
        "finished": False,
        "model": recognizer.model_name,
        "spec": recognizer.spec,  # saved corrections are cropped as this model's inputs
        "dir": batch_dir,
    }
    st.session_state[STATE] = state  # partial results survive a cancel (the rerun stops this loop)
    bar = _ProgressBar("Starting…")
    started = time.time()

    def on_image(name: str, rows: list[dict]) -> None:
        state["rows"].extend(rows)
        state["done"] += 1
        bar.show(state["done"], state["total"])

    label_uploads(uploads, recognizer, max_pixels=limits.max_pixels, on_image=on_image)
    state["finished"] = True
    state["seconds"] = time.time() - started
    bar.empty()
    return state


REVIEW_ROWS = 20_000
"""At most this many rows of a folder's output are loaded into the review table."""


def folder_output(folder: Path, model: str | None, detector: str, fmt: str, tta: str = "none") -> Path:
    """Where a folder's results go by default: one output per folder, model, detector and TTA mode,
    so a later run with the same choices resumes it and other choices never mix into it.

    The folder is known by its full resolved path (a short hash of it beside its name), so two
    folders of the same name (`/a/photos`, `/b/photos`) never share an output."""
    where = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    name = f"{folder.name or 'photos'}-{where}-{model or 'model'}-{detector}" + ("" if tta == "none" else f"-{tta}")
    return data_dir() / "labels" / (f"{name}.parquet" if fmt == "parquet" else f"{name}.csv")


@dataclass(frozen=True)
class LocalFolder:
    """What the folder form asks for: the photos, the output and the worker processes."""

    folder: Path
    out: Path
    workers: int


def local_folder_form(model: str | None, detector: str, tta: str = "none") -> LocalFolder | None:
    """Widgets for labelling a folder on this machine; None until the folder exists."""
    text = st.text_input("Folder of photos (sub-folders included)", key="batch_folder", placeholder="/path/to/photos")
    left, right = st.columns(2)
    fmt = left.radio("Results file", ["csv", "parquet"], horizontal=True, key="batch_folder_format")
    workers = right.number_input(
        "Worker processes", 1, 64, os.cpu_count() or 1, key="batch_folder_workers", help="each loads its own model"
    )
    if not text.strip():
        return None
    folder = Path(text.strip()).expanduser()
    problem = photo_folder_problem(folder)
    if problem:
        st.error(problem[0].upper() + problem[1:])
        return None
    out = folder_output(folder, model, detector, fmt, tta)
    st.caption(f"Results go to `{out}` (one file per folder, model, detector and TTA mode; a second run resumes it).")
    return LocalFolder(folder, out, int(workers))


def run_folder(folder: Path, out: Path, recognizer: EmotionRecognizer, workers: int) -> dict:
    """Label a folder on this machine with `label_folder` (the CLI's engine: worker processes,
    resumable output) and a live progress bar; returns the batch state, with up to
    REVIEW_ROWS of the output's rows for review."""
    forget_previous_batch()
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "rows": [],
        "files": {},
        "done": 0,
        "total": 0,
        "finished": False,
        "model": recognizer.model_name,
        "spec": recognizer.spec,
        "dir": None,  # the photos stay where they are
        "folder": folder,
        "out": out,
    }
    st.session_state[STATE] = state  # a cancel (the rerun stops this run) keeps what was written
    bar = _ProgressBar("Listing the folder…")
    started = time.time()

    def progress(done: int, total: int) -> None:
        state["done"], state["total"] = done, total
        bar.show(done, total)

    def listing(found: int) -> None:
        # A page element drawn now and then: a cancel (a rerun) stops the script here, walk included.
        bar.note(f"Listing the folder… {found:,} photos so far")

    labeller = RecognizerSpec.of(recognizer) if workers > 1 else recognizer
    label_folder(folder, out, labeller, progress=progress, workers=workers, listing=listing)
    state["finished"] = True
    state["seconds"] = time.time() - started
    bar.empty()
    load_folder_rows(state)
    return state


def current_batch() -> dict | None:
    """This browser session's batch state; a cancelled folder run gets the rows its output holds."""
    state = st.session_state.get(STATE)
    if state and state.get("out") and not state["rows"]:
        load_folder_rows(state)
    return state


def load_folder_rows(state: dict) -> None:
    """Fill a folder run's state with the rows its output holds (also after a cancel)."""
    rows, total = read_rows(state["out"], limit=REVIEW_ROWS)
    state["rows"], state["rows_in_output"] = rows, total
    state["files"] = {row["file"]: state["folder"] / disk_name(row["file"]) for row in rows}
    state["done"] = len({row["file"] for row in rows}) if not state["finished"] else state["done"]


def results_frame(state: dict) -> pd.DataFrame:
    """The batch's rows as a table sorted by photo and face, with review columns after `confidence`.

    `label` starts as the model's emotion and `reviewed` as False; numeric columns are numbers
    (gaps are empty), so the table and its exports keep their types.
    """
    df = pd.DataFrame([typed(r) for r in state["rows"]])
    if df.empty:
        return df
    df = df.sort_values(["file", "face"], na_position="first", kind="stable").reset_index(drop=True)
    faces = df["status"].isin(FACE_STATUSES)
    at = df.columns.get_loc("confidence") + 1
    df.insert(at, "label", df["emotion"].where(faces, None))
    df.insert(at + 1, "reviewed", False)
    for row, change in state.get(REVIEW, {}).items():  # the review so far (kept across pages)
        for column, value in change.items():
            df.at[row, column] = value
    df["detail"] = df["detail"].fillna("")  # a blank cell, not a grey "None"
    return df


REVIEW = "review"
"""Key in a batch's state: {row: {"label": ..., "reviewed": ...}}, the user's edits of the table."""
EDITOR_KEY = "batch_editor"


def fold_review(state: dict, shown: pd.DataFrame) -> bool:
    """Fold the review table's new edits into the batch's own review state (a face whose label
    was changed is ticked reviewed, as it is counted) and clear the table's edits, so that it
    redraws from that state; True when there were edits (the page then reruns)."""
    edits = (st.session_state.get(EDITOR_KEY) or {}).get("edited_rows") or {}
    if not edits:
        return False
    merge_review(state.setdefault(REVIEW, {}), edits, shown)
    st.session_state.pop(EDITOR_KEY, None)
    return True


def merge_review(review: dict, edits: dict, shown: pd.DataFrame) -> dict:
    """`review` updated with a table's `edited_rows`; a corrected face is ticked reviewed."""
    for row, change in edits.items():
        row = int(row)
        entry = review.setdefault(row, {})
        entry.update({k: v for k, v in change.items() if k in ("label", "reviewed")})
        if "label" in change and change["label"] != shown.at[row, "emotion"]:
            entry["reviewed"] = True
    return review


def review_applied(edited: pd.DataFrame) -> pd.DataFrame:
    """The edited table with `corrected` set, and corrected faces counted as reviewed."""
    out = edited.copy()
    faces = out["status"].isin(FACE_STATUSES)
    out["corrected"] = faces & (out["label"] != out["emotion"])
    out["reviewed"] = out["reviewed"].fillna(False).astype(bool) | out["corrected"]
    return out


def status_summary(df: pd.DataFrame, detector: str) -> None:
    """What happened to the photos, at the top: faces found, photos without a face, unreadable files."""
    photos = df.groupby("file")["status"].first()
    faces = int(df["status"].isin(FACE_STATUSES).sum())
    no_face, unreadable = int((photos == "no_face").sum()), int((photos == "unreadable").sum())
    with_faces = len(photos) - no_face - unreadable
    st.markdown(
        f"**{faces} faces** in {with_faces} of {len(photos)} photos · **{no_face}** photos without a face · "
        f"**{unreadable}** files could not be read"
    )
    if unreadable:
        reasons = df[df["status"] == "unreadable"].groupby("detail")["file"].count().sort_values(ascending=False)
        st.warning("Not read: " + "; ".join(f"{n} × {why}" for why, n in reasons.head(3).items()))
    if no_face and no_face >= max(3, len(photos) // 4) and detector != "mtcnn":
        st.info(
            f"{no_face} photos have no face found. If they do show faces, try the thorough detector "
            "(mtcnn in the sidebar; slower) on them."
        )


def gallery(df: pd.DataFrame, files: dict[str, Path], per_page: int = 24) -> None:
    """Annotated thumbnails, filterable by emotion, status and confidence; lowest confidence first."""
    if df.empty:
        return
    c1, c2, c3 = st.columns(3)
    emotions = c1.multiselect("Label", list(EMOTIONS), key="gal_emotion")
    statuses = c2.multiselect("Status", sorted(df["status"].unique()), key="gal_status")
    low, high = c3.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05, key="gal_conf")
    view = df.copy()
    view["conf"] = pd.to_numeric(view["confidence"], errors="coerce")
    if emotions:
        view = view[view["label"].isin(emotions)]
    if statuses:
        view = view[view["status"].isin(statuses)]
    view = view[view["conf"].isna() | view["conf"].between(low, high)]
    names = list(dict.fromkeys(view.sort_values("conf", na_position="last")["file"]))
    st.caption(f"{len(names)} photos match; showing the first {min(per_page, len(names))}, lowest confidence first.")
    columns = st.columns(4)
    for i, name in enumerate(names[:per_page]):
        with columns[i % 4]:
            mine = df[df["file"] == name].to_dict("records")
            if name in files and mine[0]["status"] != "unreadable":
                try:
                    st.image(annotated_image(files[name], mine, 320), channels="BGR", caption=name)
                except ImageReadError as e:
                    st.caption(f"{name}: {e}")
            else:
                st.caption(f"{name}: {mine[0]['detail']}")

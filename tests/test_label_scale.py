"""Labelling big folders: a lazy walk, worker processes, and resuming after a hard kill."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pandas import NA as pd_NA

from fer_core.cli import main
from fer_core.labeling import iter_folder_images, label_folder
from fer_core.rows import COLUMNS
from tests.helpers import compose_scene, fer_samples

REPO = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def photo_folder(shared_fer, tmp_path) -> Path:
    """Scenes of real FER-2013 faces in nested folders, plus files that cannot be read."""
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in fer_samples("test", per_class=2)]
    root = tmp_path / "photos"
    for i in range(24):
        folder = root / f"day{i % 3}" / ("sub" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        scene, _ = compose_scene([faces[i % len(faces)], faces[(i + 5) % len(faces)]], face_px=110, seed=i)
        cv2.imwrite(str(folder / f"img_{i:03d}.jpg"), scene)
    (root / "day0" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "day1" / "phone.HEIC").write_bytes(b"\x00" * 40)
    (root / ".hidden").mkdir()
    cv2.imwrite(str(root / ".hidden" / "skip.png"), np.zeros((20, 20, 3), np.uint8))
    return root


def test_the_walk_is_lazy_ordered_and_skips_hidden(photo_folder):
    walk = iter_folder_images(photo_folder)
    assert iter(walk) is walk  # a generator: nothing is listed up front
    names = [p.relative_to(photo_folder).as_posix() for p in walk]
    assert len(names) == 26 and not any(".hidden" in n for n in names)
    assert names == [p.relative_to(photo_folder).as_posix() for p in iter_folder_images(photo_folder)]
    assert names.index("day0/broken.jpg") < names.index("day0/sub/img_003.jpg")  # files before sub-folders


@pytest.mark.slow
def test_two_workers_write_the_same_rows_as_one(use_models, photo_folder, tmp_path, capsys):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main(["label", str(photo_folder), "--out", str(one), "--workers", "1"]) == 0
    assert main(["label", str(photo_folder), "--out", str(two), "--workers", "2"]) == 0
    assert one.read_text(encoding="utf-8") == two.read_text(encoding="utf-8")  # same rows, same order
    rows = _rows(two)
    assert {r["status"] for r in rows if r["file"].endswith(".jpg") and "img_" in r["file"]} <= {"ok", "low_confidence"}
    assert next(r for r in rows if r["file"] == "day1/phone.HEIC")["status"] == "unreadable"


@pytest.mark.slow
def test_worker_processes_never_run_the_parents_main_script(use_models, photo_folder, tmp_path, monkeypatch):
    """Under `streamlit run` the main module is the page: spawned workers once re-ran it headless."""
    import types

    from fer_core.recognizer import RecognizerSpec

    marker = tmp_path / "the page ran"
    page = tmp_path / "page.py"
    page.write_text(f"open({str(marker)!r}, 'w').close()\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    counts = label_folder(photo_folder, tmp_path / "out.csv", RecognizerSpec("tiny-test", "yunet", "none"), workers=2)
    assert sum(counts.values()) > 0
    assert not marker.exists()
    assert sys.modules["__main__"] is fake_main  # put back after the workers started


def test_a_killed_run_resumes_with_every_photo_exactly_once(use_models, photo_folder, tmp_path):
    extra = photo_folder / "copies"  # enough photos that the run cannot finish before the kill
    extra.mkdir()
    scenes = sorted(photo_folder.rglob("img_*.jpg"))
    for i in range(200):
        os.link(scenes[i % len(scenes)], extra / f"copy_{i:04d}.jpg")
    out = tmp_path / "out.csv"
    command = [sys.executable, "-m", "fer_core", "label", str(photo_folder), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(command, cwd=REPO, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and (not out.exists() or len(out.read_bytes().splitlines()) < 6):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9, workers included, wherever they are
    proc.wait()
    before = len(_rows(out)) if out.exists() else 0
    assert main(["label", str(photo_folder), "--out", str(out), "--workers", "2"]) == 0
    files = [r["file"] for r in _rows(out)]
    photos = sorted({p.relative_to(photo_folder).as_posix() for p in iter_folder_images(photo_folder)})
    assert sorted(set(files)) == photos  # none lost
    per_photo = {}
    for r in _rows(out):
        per_photo.setdefault(r["file"], set()).add(r["face"])
    assert sum(len(v) for v in per_photo.values()) == len(files)  # none repeated
    assert 0 < before < len(files)  # it really was cut off part way


def _parquet(folder: Path):
    import pandas as pd

    return pd.read_parquet(folder, dtype_backend="numpy_nullable")


def test_parquet_output_reads_back_with_the_documented_types(use_models, photo_folder, tmp_path, capsys):
    out_csv, out_parquet = tmp_path / "rows.csv", tmp_path / "rows.parquet"
    assert main(["label", str(photo_folder), "--out", str(out_csv), "--workers", "1"]) == 0
    assert main(["label", str(photo_folder), "--out", str(out_parquet), "--workers", "1", "--format", "parquet"]) == 0
    assert "wrote" in capsys.readouterr().out
    table = _parquet(out_parquet)
    assert list(table.columns) == COLUMNS
    assert str(table["face"].dtype) == "Int32" and str(table["x"].dtype) == "Int32"
    assert str(table["confidence"].dtype) == "Float64" and str(table["p_happy"].dtype) == "Float64"
    assert str(table["file"].dtype).startswith("str") or str(table["file"].dtype) == "string"
    # the same rows as the CSV, value for value (the CSV has empty cells where Parquet has nulls)
    rows = _rows(out_csv)
    assert len(rows) == len(table)
    for csv_row, record in zip(rows, table.to_dict("records")):
        for column in COLUMNS:
            value = record[column]
            text = "" if value is None or value is pd_NA else str(value)
            assert text == csv_row[column], (column, csv_row["file"])
    unreadable = table[table["status"] == "unreadable"]
    assert set(unreadable["file"]) == {"day0/broken.jpg", "day1/phone.HEIC"} and unreadable["x"].isna().all()


def test_parquet_resumes_after_a_stop_and_a_torn_shard(use_models, photo_folder, tmp_path):
    from fer_core.outputs import ParquetOutput
    from fer_core.recognizer import RecognizerSpec

    out = tmp_path / "rows.parquet"
    recognizer = RecognizerSpec().build()
    seen = []
    label_folder(
        photo_folder,
        out,
        recognizer,
        progress=lambda done, total: seen.append(done),
        should_stop=lambda: len(seen) >= 10,
    )
    assert len(_parquet(out)["file"].unique()) == 10  # the stop wrote what was labelled
    (out / ".part-000009.parquet.tmp").write_bytes(b"PAR1 half a shard")  # what a kill -9 leaves
    output = ParquetOutput(out, shard_photos=4)  # re-opened the way a resumed run does
    assert len(output.done_keys()) == 10 and not list(out.glob(".part-*.tmp"))
    output.close()
    label_folder(photo_folder, out, recognizer)
    table = _parquet(out)
    photos = [p.relative_to(photo_folder).as_posix() for p in iter_folder_images(photo_folder)]
    assert list(dict.fromkeys(table["file"])) == photos  # each photo once, in walk order
    assert not table.duplicated(["file", "face"]).any()


def test_parquet_outputs_that_would_mix_with_other_files_are_refused(use_models, photo_folder, tmp_path):
    from fer_core.outputs import ParquetOutput

    out = tmp_path / "rows.parquet"
    first = ParquetOutput(out)
    try:
        with pytest.raises(ValueError, match="another `label` run"):
            ParquetOutput(out)
    finally:
        first.close()
    (tmp_path / "file.parquet").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        ParquetOutput(tmp_path / "file.parquet")
    # a folder holding other files (here: the photos) is never written into
    assert main(["label", str(photo_folder), "--out", str(photo_folder), "--format", "parquet"]) == 2
    assert not list(photo_folder.glob("*.parquet"))


@pytest.mark.slow
def test_the_ray_engine_writes_the_same_rows_as_the_local_one(use_models, photo_folder, tmp_path, capsys):
    local, on_ray = tmp_path / "local.parquet", tmp_path / "ray"
    assert main(["label", str(photo_folder), "--out", str(local), "--workers", "1"]) == 0
    # a local 2-CPU Ray, started and stopped by the command
    assert main(["label", str(photo_folder), "--out", str(on_ray), "--engine", "ray", "--workers", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    a, b = _parquet(local), _parquet(on_ray)
    assert a.equals(b)  # same rows, same order, same types (bad files included)
    assert set(a.loc[a["status"] == "unreadable", "file"]) == {"day0/broken.jpg", "day1/phone.HEIC"}
    # resuming: a run over the same output labels nothing again
    assert main(["label", str(photo_folder), "--out", str(on_ray), "--engine", "ray", "--workers", "2"]) == 0
    assert _parquet(on_ray).equals(b)
    # a run killed after writing a shard: the photo of the shard's last row may lack rows, so it is
    # taken out of the shard and labelled again; nothing is lost or repeated
    for marker in on_ray.glob(".finished-*"):
        marker.unlink()
    last = b["file"].iloc[-1]
    assert main(["label", str(photo_folder), "--out", str(on_ray), "--engine", "ray", "--workers", "2"]) == 0
    mended = _parquet(on_ray)
    assert mended["file"].iloc[-1] == last and len(mended) == len(b)
    order = ["file", "face"]
    assert mended.sort_values(order).reset_index(drop=True).equals(b.sort_values(order).reset_index(drop=True))
    # the same folder as a URI, listed and read through pyarrow's file systems (as s3://... would be)
    by_uri = tmp_path / "uri.parquet"
    assert main(["label", photo_folder.as_uri(), "--out", str(by_uri), "--engine", "ray", "--workers", "2"]) == 0
    assert _parquet(by_uri).equals(a)


def test_ray_engine_options_are_checked(use_models, photo_folder, tmp_path, capsys):
    assert main(["label", str(photo_folder), "--out", str(tmp_path / "x"), "--engine", "ray", "--format", "csv"]) == 2
    assert "writes Parquet" in capsys.readouterr().err
    assert main(["label", str(photo_folder), "--out", str(tmp_path / "y.csv"), "--address", "auto"]) == 2
    assert "--address is for --engine ray" in capsys.readouterr().err
    assert main(["label", photo_folder.as_uri(), "--out", str(tmp_path / "z.csv")]) == 2
    assert "needs --engine ray" in capsys.readouterr().err

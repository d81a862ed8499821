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

from fer_core.cli import main
from fer_core.labeling import iter_folder_images
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

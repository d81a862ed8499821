"""Regression tests for the attacks of the safety review: each reproduces one and checks nothing is lost."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.cli import main
from fer_core.names import NameTakenError, UnsafeNameError, check_name, name_from_text, new_child_folder, safe_child
from fer_core.registry import (
    ModelError,
    ModelExistsError,
    get_model,
    list_model_names,
    registration_folder,
    set_active_model,
)
from fer_core.rows import COLUMNS
from fer_core.uploads import unpack_uploads

HOSTILE_NAMES = [".", "..", "../x", "/abs/dir", "a/b", "", " ", "-rf", "x\n", "..\\x", "C:x", "name/"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_refused(name, tmp_path):
    with pytest.raises(UnsafeNameError, match="Received"):
        check_name(name)
    with pytest.raises(UnsafeNameError):
        safe_child(tmp_path, name)


def test_names_from_uploads_lose_their_directories():
    assert name_from_text("/any/dir.zip") == "dir.zip"
    assert name_from_text("C:\\Users\\me\\faces set.zip") == "faces-set.zip"
    assert name_from_text("..") == "upload"
    assert name_from_text("../../etc/passwd") == "passwd"
    assert name_from_text("") == "upload"


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafeNameError, match="leads outside"):
        safe_child(root, "link")


def _train(args: list[str], models: Path, data: Path, run: Path, capsys) -> tuple[int, str]:
    code = main(
        ["train", "--data", str(data), "--architecture", "tiny", "--epochs", "1", "--models-dir", str(models)]
        + ["--run-dir", str(run), "--precision", "float32", *args]
    )
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", [".", "..", "../x", "ABSOLUTE"])
def test_register_as_cannot_delete_or_escape(name, use_models, pattern_dataset, tmp_path, capsys):
    """`train --register-as .` used to delete the registry; `..` its parent; an absolute path that folder."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "precious.txt").write_text("keep me")
    if name == "ABSOLUTE":
        name = str(precious)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    code, err = _train(["--register-as", name], use_models, pattern_dataset, tmp_path / "run", capsys)
    assert code == 1 and "model name must be" in err
    after = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if "run" not in p.parts)
    assert [p for p in before if "run" not in p.split("/")] == after
    assert (precious / "precious.txt").read_text() == "keep me"
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "run" / "checkpoints" / "last.keras").exists()  # refused before training


def test_existing_model_is_replaced_only_with_consent(use_models, pattern_dataset, tmp_path, capsys):
    card_before = (use_models / "tiny-test" / "card.json").read_text()
    code, err = _train(["--register-as", "tiny-test"], use_models, pattern_dataset, tmp_path / "r1", capsys)
    assert code == 1 and "already exists" in err and "--overwrite" in err
    assert (use_models / "tiny-test" / "card.json").read_text() == card_before
    code, err = _train(
        ["--register-as", "tiny-test", "--overwrite"], use_models, pattern_dataset, tmp_path / "r2", capsys
    )
    assert code == 0, err
    info = get_model("tiny-test", use_models)
    assert info.card["training"]["run_dir"] == str((tmp_path / "r2").resolve())
    info.verify()
    assert sorted(p.name for p in use_models.iterdir()) == ["active.txt", "tiny-test"]  # no staging left


def test_folder_with_other_files_is_never_replaced(use_models):
    (use_models / "tiny-test" / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="never replaced"):
        registration_folder("tiny-test", use_models, overwrite=True)
    (use_models / "plain").mkdir()
    (use_models / "plain" / "data.csv").write_text("1")
    with pytest.raises(ModelError, match="never replaced"):
        registration_folder("plain", use_models, overwrite=True)
    with pytest.raises(ModelExistsError):
        (use_models / "tiny-test" / "notes.txt").unlink()
        registration_folder("tiny-test", use_models)


def test_batch_dataset_names_stay_in_the_corrections_folder(tmp_path):
    root = tmp_path / "corrections"
    root.mkdir()
    for name in ("../x", "/abs", "..", ""):
        with pytest.raises(UnsafeNameError):
            new_child_folder(root, name, "dataset name")
    (root / "taken").mkdir()
    with pytest.raises(NameTakenError, match="already exists"):
        new_child_folder(root, "taken", "dataset name")
    assert new_child_folder(root, "fine-name", "dataset name") == root / "fine-name"


def _png(value: int) -> bytes:
    return cv2.imencode(".png", np.full((8, 8, 3), value, np.uint8))[1].tobytes()


def test_duplicate_upload_names_keep_both(tmp_path):
    a, b = _png(10), _png(200)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("set/IMG_0001.jpg", a)
        z.writestr("set/IMG_0001.jpg", b)
    uploads, rejected = unpack_uploads(
        [("IMG_0001.jpg", a), ("IMG_0001.jpg", b), ("pack.zip", zbuf.getvalue())], tmp_path
    )
    assert not rejected
    # Both kept under distinct names (rows come sorted by name; the zip's one folder names its files).
    stored = {u.name: u.path.read_bytes() for u in uploads}
    assert stored == {"IMG_0001.jpg": a, "IMG_0001 (2).jpg": b, "set/IMG_0001.jpg": a, "set/IMG_0001 (2).jpg": b}


def test_zip_name_clash_and_long_names_become_rows(tmp_path):
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("x", _png(1))
        z.writestr("x/y.png", _png(2))
        z.writestr("a" * 260 + ".png", _png(3))
        z.writestr("ok.png", _png(4))
    uploads, rejected = unpack_uploads([("clash.zip", zbuf.getvalue())], tmp_path)
    # "x" has no photo's name, so it is skipped (not stored) and "x/y.png" finds its folder free
    assert sorted(u.name for u in uploads) == ["clash/ok.png", "clash/x/y.png"]
    assert len(rejected) == 1 and all(r["status"] == "unreadable" and "cannot store" in r["detail"] for r in rejected)


WEIRD = ["new\nline.png", "carriage\rreturn.png", "next\x85line.png", "line\u2028sep.png", "plain.png"]


def _weird_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(WEIRD):
        (folder / name).write_bytes(_png(30 * i))
    (folder / os.fsdecode(b"latin1-\xe9t\xe9.png")).write_bytes(_png(99))  # not valid UTF-8
    return folder


def _read_rows(out: Path) -> list[dict]:
    with out.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_label_resume_survives_any_file_name(use_models, tmp_path, capsys):
    folder, out = _weird_folder(tmp_path), tmp_path / "out.csv"
    assert main(["label", str(folder), "--out", str(out), "--detector", "haar"]) == 0
    first = _read_rows(out)
    expected = sorted([*WEIRD, "latin1-\\xe9t\\xe9.png"])
    assert sorted(r["file"] for r in first) == expected
    # A crash in the middle of the last row, then a resume: every photo exactly once.
    raw = out.read_bytes()
    out.write_bytes(raw[: len(raw) - 25])
    assert main(["label", str(folder), "--out", str(out), "--detector", "haar"]) == 0
    again = _read_rows(out)
    assert sorted(r["file"] for r in again) == expected
    assert list(again[0]) == COLUMNS
    # A third run has nothing left to do and writes nothing.
    size = out.stat().st_size
    assert main(["label", str(folder), "--out", str(out), "--detector", "haar"]) == 0
    assert out.stat().st_size == size


def test_two_label_runs_on_one_output_are_refused(use_models, tmp_path, capsys):
    folder, out = _weird_folder(tmp_path), tmp_path / "out.csv"
    with out.open("a+b") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert main(["label", str(folder), "--out", str(out), "--detector", "haar"]) == 2
    assert "another `label` run is writing" in capsys.readouterr().err
    assert out.stat().st_size == 0


@pytest.mark.parametrize("out", ["DIR", "missing/out.csv"])
def test_label_out_errors_are_messages(use_models, tmp_path, capsys, out):
    folder = _weird_folder(tmp_path)
    target = tmp_path if out == "DIR" else tmp_path / out
    assert main(["label", str(folder), "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err


def test_active_file_naming_nothing_fails_loudly(use_models, capsys):
    (use_models / "active.txt").write_text("ghost\n")
    with pytest.raises(ModelError, match="ghost"):
        get_model(None, use_models)
    assert main(["predict", __file__]) == 2
    assert "ghost" in capsys.readouterr().err


def test_activate_with_tab_completion_slash_activates_that_model(use_models, capsys):
    shutil.copytree(use_models / "tiny-test", use_models / "aaa-first")
    assert list_model_names(use_models)[0] == "aaa-first"
    assert main(["models", "--activate", "tiny-test/"]) == 0
    assert (use_models / "active.txt").read_text().strip() == "tiny-test"
    assert get_model(None, use_models).name == "tiny-test"
    for bad in ("../tiny-test", ".", "/tmp"):
        with pytest.raises(ModelError, match="model name must be"):
            set_active_model(bad, use_models)


def _png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_formula_names_heic_and_link_loops_get_rows_and_resume(use_models, tmp_path, capsys):
    """A spreadsheet must not run a file name as a formula; formats we cannot read still get a row."""
    folder = tmp_path / "photos"
    folder.mkdir()
    blank = _png_bytes(np.full((60, 60, 3), 90, np.uint8))
    for name in ["=HYPERLINK(1).png", "+1.png", "-2.png", "@sum.png", "plain.png"]:
        (folder / name).write_bytes(blank)
    (folder / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40)
    os.symlink("loop.jpg", folder / "loop.jpg")
    out = tmp_path / "out.csv"
    assert main(["label", str(folder), "--out", str(out), "--detector", "haar"]) == 0
    rows = {r["file"]: r for r in _read_rows(out)}
    assert set(rows) == {
        "'=HYPERLINK(1).png",
        "'+1.png",
        "'-2.png",
        "'@sum.png",
        "plain.png",
        "IMG_0001.HEIC",
        "loop.jpg",
    }
    assert rows["IMG_0001.HEIC"]["status"] == "unreadable"
    assert "unsupported format: HEIC" in rows["IMG_0001.HEIC"]["detail"]
    assert rows["loop.jpg"]["status"] == "unreadable" and "symbolic links" in rows["loop.jpg"]["detail"]
    assert str(folder) not in rows["loop.jpg"]["detail"]  # no server paths in results
    # Resuming compares the names as written: nothing is labelled twice.
    size = out.stat().st_size
    assert main(["label", str(folder), "--out", str(out), "--detector", "haar"]) == 0
    assert out.stat().st_size == size


def test_damaged_zip_entries_and_odd_photos_are_rows_not_crashes(use_models, tmp_path):
    from fer_core.recognizer import EmotionRecognizer
    from fer_core.uploads import label_uploads

    photo = _png_bytes(np.full((60, 60, 3), 90, np.uint8))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("good.png", photo)
        z.writestr("bad.png", photo)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        info = z.getinfo("bad.png")
    data = bytearray(buf.getvalue())
    start = info.header_offset + 30 + len(info.filename)
    data[start : start + 8] = b"\xff" * 8  # damage the deflate stream of one entry
    lzma_buf = io.BytesIO()
    with zipfile.ZipFile(lzma_buf, "w", zipfile.ZIP_LZMA) as z:
        z.writestr("lz.png", photo)
    lz = bytearray(lzma_buf.getvalue())
    lz[40:48] = b"\x00" * 8  # inside the LZMA header/stream
    strip = _png_bytes(np.full((3, 5000, 3), 120, np.uint8))  # Haar used to raise cv2.error on this
    uploads, rejected = unpack_uploads(
        [("set.zip", bytes(data)), ("lz.zip", bytes(lz)), ("strip.png", strip)], tmp_path / "work"
    )
    reasons = {r["file"]: r["detail"] for r in rejected}
    assert reasons.get("set/bad.png", "").startswith("cannot extract"), reasons
    assert [u.name for u in uploads if u.name.startswith("set/")] == ["set/good.png"]
    assert "lz/lz.png" in reasons or any(u.name == "lz/lz.png" for u in uploads), (reasons, uploads)
    recognizer = EmotionRecognizer.from_registry(detector="haar")
    rows = label_uploads(uploads, recognizer)
    assert {r["file"] for r in rows} == {u.name for u in uploads}
    assert all(r["status"] in ("no_face", "unreadable", "ok", "low_confidence") for r in rows)


def test_labelling_keeps_crops_not_photos(use_models):
    """Each worker drops its decoded photo once the faces are cropped (memory of big batches)."""
    from fer_core.recognizer import EmotionRecognizer

    recognizer = EmotionRecognizer.from_registry(detector="haar")
    found = recognizer.find_faces(np.full((900, 1200, 3), 100, np.uint8))
    assert found.shape == (900, 1200) and found.boxes == [] and found.crops.shape[0] == 0
    assert recognizer.classify_found([found, found]) == [[], []]

"""Regression tests for the data-loss cases of the second safety review: nothing a user points
the app or the CLI at is overwritten or mixed up."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from fer_core.cli import main
from fer_core.rows import COLUMNS
from tests.helpers import SHARED

PHOTOS = SHARED.parent / "faces_in_photos"


def _rows(out: Path) -> list[dict]:
    with out.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def group_photos(tmp_path) -> Path:
    """Two real group photos (3 and 2 faces)."""
    if not PHOTOS.is_dir():
        pytest.skip(f"photos not present at {PHOTOS}")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("2008_001322.jpg", "2009_004587.jpg"):
        shutil.copy(PHOTOS / name, folder / name)
    return folder


FOREIGN = {
    "notes.txt": b"my notes, no newline at the end",
    "two.csv": b"file,emotion\na.jpg,happy\n",
    "reviewed.csv": ("\ufefffile,face,emotion,reviewed\r\na.jpg,0,sad,True\r\n").encode(),
    "IMG.jpg": None,  # a real photo
}


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_label_never_overwrites_a_file_that_is_not_its_own(use_models, group_photos, tmp_path, capsys, name):
    out = tmp_path / name
    content = FOREIGN[name] if FOREIGN[name] is not None else (group_photos / "2008_001322.jpg").read_bytes()
    out.write_bytes(content)
    assert main(["label", str(group_photos), "--out", str(out), "--workers", "1"]) == 2
    assert "is not a results file of `label`" in capsys.readouterr().err
    assert out.read_bytes() == content


def test_a_photo_cut_between_its_faces_is_labelled_again_whole(use_models, group_photos, tmp_path):
    out = tmp_path / "out.csv"
    assert main(["label", str(group_photos), "--out", str(out), "--workers", "1"]) == 0
    rows = _rows(out)
    last = rows[-1]["file"]
    faces = [r for r in rows if r["file"] == last]
    assert len(faces) >= 2, "the last photo must have several faces for this test"
    # cut the file after the first face of the last photo: a kill between its rows
    lines = out.read_bytes().splitlines(keepends=True)
    keep = len(lines) - len(faces) + 1
    out.write_bytes(b"".join(lines[:keep]))
    assert main(["label", str(group_photos), "--out", str(out), "--workers", "1"]) == 0
    again = _rows(out)
    assert list(again[0]) == COLUMNS
    assert sorted((r["file"], r["face"]) for r in again) == sorted((r["file"], r["face"]) for r in rows)


def test_two_folders_of_the_same_name_get_different_outputs(tmp_path):
    from fer_ui.batch import folder_output

    a, b = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    out_a, out_b = (folder_output(f, "m", "yunet", "csv") for f in (a, b))
    assert out_a != out_b and out_a.name.startswith("photos-") and out_b.name.startswith("photos-")
    assert folder_output(a / ".." / "photos", "m", "yunet", "csv") == out_a  # the same folder, however named


def test_an_ensemble_listing_itself_is_refused_before_anything_is_touched(use_models, capsys):
    from fer_core.registry import get_model

    before = {p.name: p.read_bytes() for p in (use_models / "tiny-test").iterdir()}
    args = ["ensemble", "tiny-test", "--members", "tiny-test", "tiny-other", "--overwrite"]
    assert main(args) == 2
    assert "cannot be one of its own members" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (use_models / "tiny-test").iterdir()} == before
    assert not get_model("tiny-test").is_ensemble


def _same_stem_photos(folder: Path) -> list[str]:
    import cv2
    import numpy as np

    face = cv2.imread(str(PHOTOS / "2009_004587.jpg"))
    (folder / "sub").mkdir(parents=True)
    names = ["x.jpg", "x.png", "x.jpeg", "sub/b.jpg", "sub__b.jpg"]
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.roll(face, 7 * i, axis=1))
    return names


def test_export_never_writes_into_the_photos_and_keeps_every_name(use_models, tmp_path, capsys):
    import zipfile

    from fer_core.exports import annotated_zip
    from fer_core.outputs import read_rows

    if not PHOTOS.is_dir():
        pytest.skip(f"photos not present at {PHOTOS}")
    photos, results = tmp_path / "photos", tmp_path / "out.csv"
    names = _same_stem_photos(photos)
    originals = {n: (photos / n).read_bytes() for n in names}
    assert main(["label", str(photos), "--out", str(results), "--workers", "1"]) == 0
    for inside in (photos, photos / "sub"):
        assert main(["export", str(results), "--photos", str(photos), "--annotated", str(inside)]) == 2
        assert "inside the photo folder" in capsys.readouterr().err
    assert {n: (photos / n).read_bytes() for n in names} == originals
    out = tmp_path / "annotated"
    assert main(["export", str(results), "--photos", str(photos), "--annotated", str(out)]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(["x.jpg", "x.png.jpg", "x.jpeg", "sub/b.jpg", "sub__b.jpg"])
    assert "5 photos" in capsys.readouterr().out
    # a second export into the same folder replaces nothing
    (out / "x.jpg").write_bytes(b"mine")
    assert main(["export", str(results), "--photos", str(photos), "--annotated", str(out)]) == 0
    assert (out / "x.jpg").read_bytes() == b"mine" and "already there" in capsys.readouterr().out
    rows, _ = read_rows(results)
    with zipfile.ZipFile(__import__("io").BytesIO(annotated_zip(rows, {n: photos / n for n in names}))) as z:
        assert len(z.namelist()) == len(set(z.namelist())) == 5
        assert all((i.external_attr >> 16) & 0o777 == 0o644 for i in z.infolist())


def test_a_saved_training_set_keeps_one_crop_per_face(use_models, tmp_path):
    from fer_core.corrections import save_corrections_dataset
    from fer_core.outputs import read_rows

    if not PHOTOS.is_dir():
        pytest.skip(f"photos not present at {PHOTOS}")
    photos, results = tmp_path / "photos", tmp_path / "out.csv"
    names = _same_stem_photos(photos)
    assert main(["label", str(photos), "--out", str(results), "--workers", "1"]) == 0
    rows, _ = read_rows(results)
    faces = [r for r in rows if r["status"] in ("ok", "low_confidence", "small_face")]
    counts = save_corrections_dataset(rows, {n: photos / n for n in names}, tmp_path / "set", reviewed_only=False)
    crops = [p for p in (tmp_path / "set").rglob("*.png")]
    manifest = _rows(tmp_path / "set" / "manifest.csv")
    assert sum(counts.values()) == len(crops) == len(manifest) == len(faces) > 0
    assert len({m["crop"] for m in manifest}) == len(manifest)
    for m in manifest:
        assert (tmp_path / "set" / m["crop"]).is_file() and m["crop"].startswith(f"{m['label']}/{m['source']}__face")


def _train_args(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--architecture", "tiny", "--epochs", "1", "--run-dir", str(run_dir), *extra]


def test_a_refused_run_changes_nothing_and_leaves_no_folder(use_models, pattern_dataset, tmp_path, capsys):
    # a run folder whose run never finished an epoch keeps its settings when a new run there is refused
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text('{"data": "mine"}\n')
    assert main(_train_args(pattern_dataset, unfinished, "--register-as", "tiny-test")) == 1
    assert "already exists" in capsys.readouterr().err
    assert (unfinished / "config.json").read_text() == '{"data": "mine"}\n'
    # a folder of the user's own files is not a run folder: nothing is written into it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(_train_args(pattern_dataset, mine)) == 1
    assert "not a training run's" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # a refused new run (an unknown teacher, a taken name) leaves no run folder behind
    for extra in (("--teacher", "ghost"), ("--register-as", "tiny-test")):
        gone = tmp_path / f"new-{extra[1]}"
        assert main(_train_args(pattern_dataset, gone, *extra)) == 1
        assert not gone.exists(), extra


def test_calibration_never_rehashes_a_changed_weights_file(use_models, capsys):
    from fer_core.registry import get_model, save_calibration

    save_calibration("tiny-test", {"temperature": 2.0, "fitted_on": "test"})
    card_before = (use_models / "tiny-test" / "card.json").read_text()
    weights = use_models / "tiny-test" / "model.tflite"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    assert main(["calibrate", "--undo", "--model", "tiny-test"]) == 2
    assert "does not match the card" in capsys.readouterr().err
    assert (use_models / "tiny-test" / "card.json").read_text() == card_before
    with pytest.raises(Exception, match="does not match the card"):
        get_model("tiny-test").verify()


def test_the_ray_engine_waits_for_no_one_it_refuses_a_locked_output(use_models, tmp_path, capsys):
    import fcntl

    photos = tmp_path / "photos"
    photos.mkdir()
    out = tmp_path / "x.parquet"
    out.mkdir()
    with (out / ".lock").open("a") as holder:  # a local run writing the same output
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert main(["label", str(photos), "--out", str(out), "--engine", "ray", "--workers", "1"]) == 2
    assert "another `label` run is writing" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


@pytest.mark.parametrize(
    "members",
    [["tiny-test", "tiny-other"], [{"name": "tiny-test", "weight": 0}, {"name": "tiny-other", "weight": 0}]],
)
def test_a_malformed_ensemble_card_is_listed_as_broken_and_nothing_else_fails(use_models, capsys, members):
    import json

    from fer_core.registry import list_models

    shutil.copytree(use_models / "tiny-test", use_models / "tiny-other")
    (use_models / "odd").mkdir()
    card = {
        "name": "odd",
        "kind": "ensemble",
        "classes": json.loads((use_models / "tiny-test" / "card.json").read_text())["classes"],
        "members": members,
    }
    (use_models / "odd" / "card.json").write_text(json.dumps(card))
    rows = {r["name"]: r for r in list_models(use_models)}
    assert not rows["odd"]["ok"] and rows["tiny-test"]["ok"]
    assert main(["models"]) == 0
    assert "BROKEN" in capsys.readouterr().out
    (use_models / "active.txt").write_text("odd\n")
    assert main(["models"]) == 0
    assert "is not usable" in capsys.readouterr().err


def test_evaluate_on_empty_images_or_a_class_folder_linking_to_the_root_is_a_message(use_models, tmp_path, capsys):
    (tmp_path / "zero" / "happy").mkdir(parents=True)
    (tmp_path / "zero" / "happy" / "a.jpg").write_bytes(b"")
    assert main(["evaluate", "--data", str(tmp_path / "zero")]) == 2
    assert "no readable labelled image" in capsys.readouterr().err
    (tmp_path / "loop" / "happy").mkdir(parents=True)
    (tmp_path / "loop" / "sad").symlink_to("/")
    assert main(["evaluate", "--data", str(tmp_path / "loop")]) == 2
    assert "links to a folder that holds the set itself" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["127.0.0.1:1", "auto", "nonsense"])
def test_an_unreachable_ray_cluster_is_a_message_in_seconds(use_models, tmp_path, capsys, monkeypatch, address):
    import time

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "photos").mkdir()
    started = time.monotonic()
    args = ["label", str(tmp_path / "photos"), "--out", str(tmp_path / "x.parquet"), "--engine", "ray"]
    assert main([*args, "--address", address]) == 2
    assert "--address" in capsys.readouterr().err
    assert time.monotonic() - started < 30


def test_link_loops_pipes_and_endless_files_never_hang_a_folder_run(use_models, tmp_path):
    import os

    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    import cv2
    import numpy as np

    cv2.imwrite(str(photos / "a.png"), np.full((60, 60, 3), 90, np.uint8))
    (photos / "sub" / "up").symlink_to("..")  # a loop
    (photos / "sub" / "again").symlink_to("../sub")  # a second loop
    (photos / "proc").symlink_to("/proc")
    os.mkfifo(photos / "pipe.jpg")  # reading it would wait forever
    (photos / "zero.jpg").symlink_to("/dev/zero")  # reading it would never end
    out = tmp_path / "out.csv"
    assert main(["label", str(photos), "--out", str(out), "--workers", "1"]) == 0
    rows = {r["file"]: r for r in _rows(out)}
    assert sorted(rows) == ["a.png", "pipe.jpg", "zero.jpg"]  # the photo once, under one name
    assert "not a regular file" in rows["pipe.jpg"]["detail"] and "not a regular file" in rows["zero.jpg"]["detail"]


def test_a_calibration_saved_then_undone_leaves_the_card_as_it_was(use_models):
    import json

    from fer_core.registry import save_calibration, undo_calibration

    path = use_models / "tiny-test" / "card.json"
    before = json.loads(path.read_text())
    for tta in ("none", "flip"):
        save_calibration("tiny-test", {"temperature": 3.0, "fitted_on": "test"}, tta=tta)
        assert undo_calibration("tiny-test") == tta
        assert json.loads(path.read_text()) == before, tta


@pytest.mark.parametrize("zip_name", ["...zip", "C:\\\\Users\\\\me\\\\my set.zip", "a\\\\b.zip"])
def test_a_zip_is_judged_by_its_entries_not_by_its_odd_name(tmp_path, zip_name):
    import io
    import zipfile

    import cv2
    import numpy as np

    from fer_core.uploads import unpack_uploads

    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.png", png)
        z.writestr("sub/b.png", png)
    uploads, rejected = unpack_uploads([(zip_name, buf.getvalue())], tmp_path / "w")
    assert rejected == [] and len(uploads) == 2
    assert all(u.path.resolve().is_relative_to((tmp_path / "w").resolve()) for u in uploads)


@pytest.mark.parametrize("folder", ["/", "/proc", "/sys/kernel", "/dev"])
def test_the_whole_machine_or_a_kernel_file_system_is_refused_at_once(use_models, tmp_path, capsys, folder):
    assert main(["label", folder, "--out", str(tmp_path / "out.csv")]) == 2
    assert "error: " in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_a_stop_during_the_counting_walk_ends_the_run_there(use_models, tmp_path, monkeypatch):
    from fer_core import labeling
    from fer_core.outputs import read_rows
    from fer_core.recognizer import EmotionRecognizer

    folder = tmp_path / "many"
    for i in range(6):
        (folder / f"d{i}").mkdir(parents=True)
        (folder / f"d{i}" / "x.jpg").write_bytes(b"not read before the walk ends")
    monkeypatch.setattr(labeling, "LISTING_STEP", 2)
    found: list[int] = []
    counts = labeling.label_folder(
        folder,
        tmp_path / "out.csv",
        EmotionRecognizer.from_registry(),
        listing=found.append,
        should_stop=lambda: len(found) == 2,  # a page's cancel, after 4 of 6 photos were counted
    )
    assert found == [2, 4] and sum(counts.values()) == 0
    assert read_rows(tmp_path / "out.csv")[1] == 0  # nothing labelled, the output holds no row


def test_deep_names_and_spread_out_folders_meet_the_limits(tmp_path):
    import io
    import zipfile

    from fer_core.uploads import FOLDER_BYTES, MAX_DEPTH, UploadLimits, unpack_uploads

    deep = "/".join(["d"] * 1000) + "/face.png"  # once a RecursionError that lost the whole batch
    ok = "a/b/face.png"
    uploads, rejected = unpack_uploads([(deep, b"x"), (ok, b"x")], tmp_path / "w1")
    assert [u.name for u in uploads] == [ok]
    assert f"at most {MAX_DEPTH}" in rejected[0]["detail"] and len(rejected[0]["file"]) < 300

    buf = io.BytesIO()  # a small zip naming a new folder tree for every photo
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(40):
            z.writestr(f"set/{i}/{i}/{i}/p.png", b"x")
    limits = UploadLimits(max_files=1000, max_total_bytes=30 * 4 * FOLDER_BYTES)
    uploads, rejected = unpack_uploads([("spread.zip", buf.getvalue())], tmp_path / "w2", limits)
    folders = [p for p in (tmp_path / "w2").rglob("*") if p.is_dir()]
    assert len(folders) * FOLDER_BYTES + len(uploads) <= limits.max_total_bytes
    assert uploads and rejected and all("folders count too" in r["detail"] for r in rejected)
    limits = UploadLimits(max_files=20, max_total_bytes=1 << 30)
    uploads, rejected = unpack_uploads([(f"s/{i}/{i}/p.png", b"x") for i in range(15)], tmp_path / "w3", limits)
    assert len([p for p in (tmp_path / "w3").rglob("*") if p.is_dir()]) <= 20
    assert any("20 folders" in r["detail"] for r in rejected)


def test_the_sweep_removes_ended_sessions_and_gone_servers_only(tmp_path):
    import subprocess
    import sys

    from fer_ui.session_files import PREFIX, sweep

    mine = tmp_path / f"{PREFIX}{os.getpid()}"
    for session in ("alive~1", "closed~2"):
        (mine / session / "batch").mkdir(parents=True)
        (mine / session / "batch" / "p.png").write_bytes(b"x")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{PREFIX}{gone.stdout.strip()}"  # a server process that has ended
    (dead / "s").mkdir(parents=True)
    running = tmp_path / f"{PREFIX}1"  # another server still running (pid 1 always is)
    running.mkdir()
    removed = sweep({"alive"}, mine)
    assert sorted(removed) == sorted([mine / "closed~2", dead])
    assert (mine / "alive~1" / "batch" / "p.png").is_file() and running.is_dir()
    assert sweep(None, mine) == [] and (mine / "alive~1").is_dir()  # sessions unknown: nothing swept


def test_the_servers_upload_store_refuses_beyond_a_sessions_and_the_servers_caps():
    from starlette.exceptions import HTTPException
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    from fer_ui.session_files import bound_uploads

    store = MemoryUploadedFileManager("/_stcore/upload_file")
    bound_uploads(store, per_session_files=3, per_session_bytes=1000, server_bytes=1500)
    bound_uploads(store, per_session_files=1, per_session_bytes=1, server_bytes=1)  # once only

    def put(session: str, file_id: str, size: int) -> None:
        store.add_file(session_id=session, file=UploadedFileRec(file_id, f"{file_id}.png", "image/png", b"x" * size))

    put("a", "1", 400)
    put("a", "2", 400)
    with pytest.raises(HTTPException, match="uploads would pass") as refused:
        put("a", "3", 400)
    assert refused.value.status_code == 413
    put("a", "2", 500)  # the same file again replaces it: 900 bytes held
    put("a", "3", 50)
    with pytest.raises(HTTPException, match="holds 3 uploaded files"):
        put("a", "4", 10)
    put("b", "1", 500)
    with pytest.raises(HTTPException, match="server holds as many uploads"):
        put("b", "2", 100)
    assert sum(len(f.data) for s in store.file_storage.values() for f in s.values()) == 1450
    store.remove_session_files("a")
    put("b", "2", 100)  # room again once a session's files are gone


@pytest.mark.parametrize("foreign", [".notes", "zz_broken.parquet", "theirs.parquet"])
def test_a_parquet_output_touches_only_its_own_shards(use_models, group_photos, tmp_path, capsys, foreign):
    import pyarrow.parquet as pq

    from fer_core.outputs import SHARD_MARK, rows_table

    out = tmp_path / "results.parquet"
    out.mkdir()
    if foreign == "theirs.parquet":  # a user's own file with our very columns
        pq.write_table(rows_table([{"file": "x.jpg", "status": "ok"}]), out / foreign)
    else:
        (out / foreign).write_bytes(b"the user's own")
    before = sorted(p.name for p in out.iterdir())
    assert main(["label", str(group_photos), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds other files" in err and foreign in err
    assert sorted(p.name for p in out.iterdir()) == before  # nothing renamed, nothing added

    mine = tmp_path / "mine.parquet"
    assert main(["label", str(group_photos), "--out", str(mine)]) == 0
    shards = sorted(mine.glob("part-*.parquet"))
    assert shards and all(pq.read_schema(s).metadata.items() >= SHARD_MARK.items() for s in shards)
    assert main(["label", str(group_photos), "--out", str(mine)]) == 0  # resumes its own folder
    assert "wrote 0 rows" in capsys.readouterr().out


def test_odd_names_are_found_again_by_export_and_never_share_a_row(use_models, group_photos, tmp_path, capsys):
    photo = (group_photos / "2009_004587.jpg").read_bytes()
    folder = tmp_path / "odd"
    folder.mkdir()
    names = ["'quoted.jpg", "=sum.jpg", "''two.jpg", "\\xff.jpg"]
    for name in names:
        (folder / name).write_bytes(photo)
    with open(os.path.join(os.fsencode(folder), b"\xff.jpg"), "wb") as f:
        f.write(photo)
    out = tmp_path / "odd.csv"
    assert main(["label", str(folder), "--out", str(out)]) == 0
    from fer_core.outputs import read_rows

    files = {r["file"] for r in read_rows(out)[0]}
    assert files == {*names[:3], "\\\\xff.jpg", "\\xff.jpg"}  # five photos, five names
    assert main(["label", str(folder), "--out", str(out)]) == 0  # resume: every name is known again
    assert "wrote 0 rows" in capsys.readouterr().out
    assert main(["export", str(out), "--photos", str(folder), "--sorted", str(tmp_path / "sorted")]) == 0
    captured = capsys.readouterr()
    assert "not in" not in captured.err, captured.err
    assert "5 photos ->" in captured.out

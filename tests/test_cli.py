"""`python -m fer_core` commands on real files with the tiny trained model."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.cli import main
from fer_core.rows import COLUMNS
from tests.helpers import compose_scene, fer_samples, keras_multiply_adds, write_class_folders, write_two_face_clip


@pytest.fixture
def photo_folder(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "blank.png"), np.full((120, 160, 3), 128, np.uint8))
    (root / "sub" / "broken.jpg").write_bytes(b"not really a jpeg")
    (root / "sub" / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("ignored: not an image name")
    samples = fer_samples("test", per_class=1)
    if not samples:
        pytest.skip("FER-2013 test faces (../shared) are needed for the scene with two faces")
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in samples[:2]]
    scene, _ = compose_scene(faces)
    cv2.imwrite(str(root / "sub" / "two_faces.jpg"), scene)
    return root


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_label_rows_statuses_and_resume(use_models, photo_folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert main(["label", str(photo_folder), "--out", str(out)]) == 0
    rows = _rows(out)
    assert list(rows[0].keys()) == COLUMNS
    by_file = {}
    for r in rows:
        by_file.setdefault(r["file"], []).append(r)
    assert by_file["blank.png"][0]["status"] == "no_face" and by_file["blank.png"][0]["x"] == ""
    assert by_file["sub/broken.jpg"][0]["status"] == "unreadable"
    assert "not a recognised image" in by_file["sub/broken.jpg"][0]["detail"]
    assert by_file["sub/empty.png"][0]["detail"] == "empty file (0 bytes)"
    assert "notes.txt" not in by_file
    faces = by_file["sub/two_faces.jpg"]
    assert len(faces) == 2 and {f["status"] for f in faces} <= {"ok", "low_confidence"}
    assert sum(
        float(faces[0][f"p_{e}"]) for e in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    ) == pytest.approx(1, abs=1e-3)
    # Resume: a cut-off file is repaired and only the missing photos are labelled again.
    text = out.read_text().splitlines(keepends=True)
    out.write_text("".join(text[:2]) + text[2][:10])
    capsys.readouterr()
    assert main(["label", str(photo_folder), "--out", str(out)]) == 0
    again = _rows(out)
    assert sorted((r["file"], r["face"]) for r in again) == sorted((r["file"], r["face"]) for r in rows)
    assert main(["label", str(photo_folder), "--out", str(out)]) == 0
    assert "wrote 0 rows" in capsys.readouterr().out


def test_export_draws_and_sorts_the_photos_of_a_results_file(use_models, photo_folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert main(["label", str(photo_folder), "--out", str(out)]) == 0
    rows = _rows(out)
    two = [r for r in rows if r["file"] == "sub/two_faces.jpg"]
    drawn, sorted_dir = tmp_path / "drawn", tmp_path / "sorted"
    export = ["export", str(out), "--photos", str(photo_folder)]
    assert main([*export, "--annotated", str(drawn), "--sorted", str(sorted_dir)]) == 0
    said = capsys.readouterr().out
    assert f"2 photos -> {drawn}" in said and f"2 photos -> {sorted_dir}" in said  # unreadable ones are left out
    assert cv2.imread(str(drawn / "sub" / "two_faces.jpg")) is not None and (drawn / "blank.png.jpg").is_file()
    original = (photo_folder / "sub" / "two_faces.jpg").read_bytes()
    assert (sorted_dir / two[0]["emotion"] / "sub" / "two_faces.jpg").read_bytes() == original
    assert (sorted_dir / "no_face" / "blank.png").is_file()
    # A reviewed results file (as the Batch page's CSV): the person's label wins; a row naming a path
    # outside the photo folder, or a label leading outside the output, is never followed.
    reviewed = tmp_path / "reviewed.csv"
    fields = [*rows[0].keys(), "label"]
    relabelled = "fear" if two[0]["emotion"] != "fear" else "sad"
    with reviewed.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "label": relabelled if r is two[0] else ""})
        writer.writerow({**two[0], "file": "../outside.jpg", "label": ""})
        writer.writerow({**two[0], "file": "notes.txt", "label": "../../escaped"})
    (photo_folder / "notes.txt").write_text("not a photo")
    assert main([*export, "--sorted", str(tmp_path / "resorted")]) == 0
    capsys.readouterr()
    assert main(["export", str(reviewed), "--photos", str(photo_folder), "--sorted", str(tmp_path / "s2")]) == 0
    err = capsys.readouterr().err
    assert "skipped '../outside.jpg'" in err and "would lead outside" in err
    assert (tmp_path / "s2" / relabelled / "sub" / "two_faces.jpg").is_file()
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "outside.jpg").exists()
    # The reviewed face as a training set, cropped as the model crops; the rest only with --all-faces.
    rows_reviewed = _rows(reviewed)
    for r in rows_reviewed:
        r["reviewed"] = "True" if r["file"] == "sub/two_faces.jpg" and r["label"] else ""
    with reviewed.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*fields, "reviewed"])
        writer.writeheader()
        writer.writerows(rows_reviewed)
    dataset = tmp_path / "mine"
    assert main(["export", str(reviewed), "--photos", str(photo_folder), "--dataset", str(dataset)]) == 0
    assert f"1 face crops -> {dataset}: " in capsys.readouterr().out
    crops = list(dataset.rglob("*.png")) + list(dataset.rglob("*.jpg"))
    assert len(crops) == 1 and crops[0].relative_to(dataset).parts[0] == relabelled  # label/photo path__faceN
    assert cv2.imread(str(crops[0])).shape[:2] == (48, 48)
    assert main(["export", str(reviewed), "--photos", str(photo_folder), "--dataset", str(dataset)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert main([*export, "--dataset", str(tmp_path / "none")]) == 0  # label's output: nobody reviewed
    said = capsys.readouterr().out
    assert "0 face crops" in said and "--all-faces keeps the model's labels" in said
    assert main([*export, "--dataset", str(tmp_path / "all"), "--all-faces"]) == 0
    assert "2 face crops" in capsys.readouterr().out
    assert main([*export]) == 2 and "--sorted DIR and/or --dataset DIR" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "none.csv"), "--photos", str(photo_folder), "--sorted", "x"]) == 2


def test_predict_json_and_text(use_models, photo_folder, capsys):
    assert main(["predict", str(photo_folder / "blank.png"), str(photo_folder / "sub" / "broken.jpg"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report[0] == {"file": str(photo_folder / "blank.png"), "faces": [], "error": None}
    assert "not a recognised image" in report[1]["error"]
    main(["predict", str(photo_folder / "blank.png")])
    assert "no face" in capsys.readouterr().out


def test_evaluate_json(use_models, tmp_path, capsys):
    data = write_class_folders(tmp_path / "eval", per_class=6, seed=5)
    assert main(["evaluate", "--data", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "classes", "n", "ece"):
        assert key in result
    assert result["n"] == 42 and result["accuracy"] > 0.5
    assert sum(map(sum, result["confusion_matrix"])) == 42
    assert main(["evaluate", "--data", str(data)]) == 0
    assert "macro_f1=" in capsys.readouterr().out
    # The mistakes, surest first, on a set whose angry and happy folders were swapped (12 mislabelled faces).
    swapped = write_class_folders(tmp_path / "swapped", per_class=6, seed=5, names={0: "happy", 3: "angry"})
    errors = tmp_path / "review" / "errors.csv"
    assert main(["evaluate", "--data", str(swapped), "--errors", str(errors), "--json"]) == 0
    matrix = np.array(json.loads(capsys.readouterr().out)["confusion_matrix"])
    rows = _rows(errors)
    assert len(rows) == matrix.sum() - np.trace(matrix) >= 12  # every face off the diagonal, once
    assert {(r["true"], r["predicted"]) for r in rows} >= {("angry", "happy"), ("happy", "angry")}
    assert all(r["true"] != r["predicted"] and Path(r["source"]).parent.name == r["true"] for r in rows)
    assert [float(r["p_true"]) for r in rows] == sorted(float(r["p_true"]) for r in rows)


def test_models_listing_and_errors(use_models, tmp_path, capsys, monkeypatch):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "* tiny-test" in out and "macro-F1" in out and "ms/face" in out
    row = next(line for line in out.splitlines() if line.startswith("* tiny-test")).split()
    assert row[2] == "tiny" and row[4].endswith("%")  # name, architecture, parameters, accuracy
    assert row[7] in ("dynamic", "float16")  # int8 weights, or float16 where they strayed
    # --measure times every model here, beside the card's figure from the machine that made it.
    assert main(["models", "--measure"]) == 0
    out = capsys.readouterr().out
    assert "here b64" in out and "measured now on this machine" in out
    row = next(line for line in out.splitlines() if line.startswith("* tiny-test")).split()
    assert float(row[8]) > 0 and float(row[9]) > 0
    assert main(["models", "--measure", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert all(r["here_ms_per_face"] > 0 and r["here_ms_one_face"] > 0 for r in listed if r["ok"])
    # Multiply-adds counted from the LiteRT file agree with the Keras model's own layer shapes.
    tiny = next(r for r in listed if r["name"] == "tiny-test")
    assert float(row[10]) == pytest.approx(tiny["multiply_adds"] / 1e6, abs=0.05)
    assert tiny["multiply_adds"] == keras_multiply_adds(use_models / "tiny-test" / "model.keras")
    broken = tmp_path / "broken_models"
    shutil.copytree(use_models, broken)
    (broken / "tiny-test" / "model.tflite").write_bytes(b"xx")
    monkeypatch.setenv("FER_MODELS_DIR", str(broken))
    main(["models"])
    assert "BROKEN" in capsys.readouterr().out
    assert main(["predict", str(tmp_path)]) == 2
    assert "sha256" in capsys.readouterr().err
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "none"))
    assert main(["evaluate", "--data", str(tmp_path)]) == 2
    assert "No trained model is installed" in capsys.readouterr().err


def test_models_name_prints_the_models_card(use_models, capsys):
    from fer_core.registry import get_model

    card = get_model("tiny-test").card
    assert main(["models", "tiny-test"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"tiny-test (active) · tiny · {card['parameters']:,} parameters · input 48 px")
    assert lines[1].startswith(f"trained on {card['training']['data']}: {card['training']['epochs_run']} epochs")
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] in (["validation"], ["test"])}
    splits = [split for split in ("validation", "test") if split in card["metrics"]]
    assert "validation" in splits and sorted(rows) == sorted(splits)
    for split in splits:
        m = card["metrics"][split]
        assert rows[split][2:4] == [f"{100 * m['accuracy']:.1f}%", f"{m['macro_f1']:.3f}"]
        assert rows[split][4] == f"{100 * m['per_class']['angry']['recall']:.1f}%"
    assert "flip: 2 views" in out and "crops: 10 views" in out and "calibration: temperature" in out
    curve = [line for line in lines[lines.index(next(x for x in lines if x.startswith("learning curve"))) :]]
    assert sum(1 for line in curve if line[:1].isdigit()) == len(card["training"]["history"])
    assert main(["models", "tiny-test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == card
    assert main(["models", "tiny-test", "--measure"]) == 0
    assert "here: " in capsys.readouterr().out.splitlines()[-1]
    assert main(["models", "nope"]) == 2
    assert "no such model" in capsys.readouterr().err


def test_video_labels_a_clip_frame_by_frame(use_models, tmp_path, capsys):
    clip = write_two_face_clip(tmp_path / "clip.mp4")
    if clip is None:
        pytest.skip("FER-2013 test faces (../shared) are needed for a clip with two faces")
    out, annotated = tmp_path / "res" / "clip.csv", tmp_path / "annotated.mp4"
    assert main(["video", str(clip), "--out", str(out), "--annotated", str(annotated)]) == 0
    said = capsys.readouterr().out
    assert "8 frames at 10 fps, 2 faces tracked, 16 rows" in said, said
    rows = _rows(out)
    assert len(rows) == 16 and len({r["track"] for r in rows}) == 2
    assert {r["emotion"] for r in rows} <= {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    copy = cv2.VideoCapture(str(annotated))
    assert int(copy.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    copy.release()
    assert main(["video", str(clip), "--out", str(out), "--min-face", "400"]) == 0  # faces are 120 px
    assert "0 faces tracked, 0 rows" in capsys.readouterr().out and len(_rows(out)) == 0
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    assert main(["video", str(tmp_path / "broken.mp4"), "--out", str(out)]) == 2
    assert "broken.mp4: " in capsys.readouterr().err
    assert main(["video", str(tmp_path / "missing.mp4"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_calibrate_saves_only_what_helps_and_can_undo(use_models, pattern_dataset, tmp_path, capsys):
    from fer_core.registry import get_model, save_calibration

    small = write_class_folders(tmp_path / "small", per_class=3)
    assert main(["calibrate", "--data", str(small)]) == 2
    assert "needs at least 200 labelled faces" in capsys.readouterr().err
    # A badly underconfident temperature for TTA "flip": a fitted one must do better on held-out faces.
    plain = get_model("tiny-test").card["calibration"]["temperature"]
    save_calibration("tiny-test", {"temperature": 20.0, "fitted_on": "a bad fit"}, tta="flip")
    flip = ["calibrate", "--data", str(pattern_dataset), "--tta", "flip"]
    assert main([*flip, "--json"]) == 0  # without --save nothing changes
    report = json.loads(capsys.readouterr().out)
    assert report["improves"] and not report["saved"] and report["current_temperature"] == 20.0
    assert get_model("tiny-test").temperature_for("flip") == 20.0
    assert main([*flip, "--save"]) == 0
    assert "saved into tiny-test's card for TTA flip" in capsys.readouterr().out
    saved = get_model("tiny-test").card["calibration"]["by_tta"]["flip"]
    assert saved["temperature"] == pytest.approx(report["temperature"]) and saved["n_fit"] + saved["n_eval"] == 210
    assert saved["fitted_on"].startswith("python -m fer_core calibrate: 210 labelled faces")
    assert get_model("tiny-test").card["calibration"]["temperature"] == plain  # plain predictions keep theirs
    assert main([*flip, "--save"]) == 0  # the same fit again helps no more: nothing is written
    assert "nothing to save" in capsys.readouterr().out
    assert len(get_model("tiny-test").card["calibration_history"]) == 2
    assert main(["calibrate", "--undo"]) == 0
    assert "restored the previous calibration (TTA flip)" in capsys.readouterr().out
    assert get_model("tiny-test").temperature_for("flip") == 20.0
    assert main(["calibrate"]) == 2 and "--data is required" in capsys.readouterr().err


def test_module_entry_point_runs(use_models):
    out = subprocess.run(
        [sys.executable, "-m", "fer_core", "models", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)[0]["name"] == "tiny-test"


SUBCOMMANDS = ["predict", "label", "export", "video", "evaluate", "calibrate", "models", "ensemble", "measure"]
SUBCOMMANDS += ["blend", "quantize", "train", "runs"]


def test_the_help_tests_cover_every_subcommand():
    import argparse

    from fer_core.cli import build_parser

    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(actions[0].choices) == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_prints(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m fer_core " + command)
    if command in ("predict", "label", "video"):
        assert "yunet: the default" in out and "--detector" in out
    if command == "train":
        assert "--run-seed" in out and "same validation split" in out


def test_runs_lists_a_finished_run_and_shows_its_learning_curve(tiny_runs, capsys):
    from fer_core.train.events import finished_epochs, read_events

    epochs = finished_epochs(read_events(tiny_runs / "tiny"))
    best = max(epochs, key=lambda e: e["val_accuracy"])
    assert main(["runs", "--runs-dir", str(tiny_runs)]) == 0
    listed = capsys.readouterr().out.splitlines()
    row = next(line for line in listed if line.startswith("tiny "))
    assert row.split()[1:4] == ["finished", "tiny", "6/6"] and row.split()[-1] == "tiny-test"
    assert f"(ep {best['epoch']})" in row

    assert main(["runs", "tiny", "--runs-dir", str(tiny_runs), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["run"]["status"] == "finished" and doc["run"]["best_epoch"] == best["epoch"]
    assert [h["epoch"] for h in doc["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert [h["val_accuracy"] for h in doc["epochs"]] == [pytest.approx(e["val_accuracy"], abs=1e-5) for e in epochs]
    assert doc["progress"] is None  # nothing trains now

    assert main(["runs", "tiny", "--runs-dir", str(tiny_runs)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny: finished · tiny · 6/6 epochs")
    curve = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert [int(c[0]) for c in curve] == [1, 2, 3, 4, 5, 6]
    assert curve[best["epoch"] - 1][3] == f"{100 * best['val_accuracy']:.1f}%"
    assert f"best: epoch {best['epoch']}, validation" in out and "registered as model tiny-test" in out
    assert main(["runs", "tiny", "--runs-dir", str(tiny_runs), "--log", "5"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(the run has no log: it was started from a shell)")
    (tiny_runs / "tiny" / "log.txt").write_text("".join(f"line {i}\n" for i in range(9)))  # as a page-started run has
    assert main(["runs", "tiny", "--runs-dir", str(tiny_runs), "--log", "2"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("line 7\nline 8")


def test_a_command_piped_into_a_reader_that_quits_early_ends_quietly(tiny_runs):
    (tiny_runs / "tiny" / "log.txt").write_text("a log line long enough to fill a pipe\n" * 20_000)
    command = [sys.executable, "-m", "fer_core", "runs", "tiny", "--runs-dir", str(tiny_runs), "--log", "20000"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()  # as `| head -1` reads: the first line, then the reader is gone
    proc.stdout.close()
    err = proc.communicate(timeout=60)[1].decode()
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def test_runs_errors_name_the_problem(tiny_runs, tmp_path, capsys):
    assert main(["runs", "--runs-dir", str(tmp_path / "nowhere")]) == 2
    assert "no runs folder at" in capsys.readouterr().err
    assert main(["runs", "nope", "--runs-dir", str(tiny_runs)]) == 2
    err = capsys.readouterr().err
    assert "no run named 'nope'" in err and "(runs there: tiny)" in err
    assert main(["runs", "tiny", "--stop", "--runs-dir", str(tiny_runs)]) == 2
    assert "is not running (finished)" in capsys.readouterr().err
    assert not (tiny_runs / "tiny" / "STOP").exists()
    assert main(["runs", "--stop", "--runs-dir", str(tiny_runs)]) == 2
    assert "--stop needs the name" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["runs", "--runs-dir", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.startswith("No runs in")

"""Page tests (AppTest) and a smoke test of the real server."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import compose_scene, fer_samples, write_class_folders, write_two_face_clip

REPO = Path(__file__).resolve().parents[1]
PAGES = ["pages/home.py", "pages/live.py", "pages/batch.py", "pages/evaluate.py", "pages/train.py"]


@pytest.fixture
def app_env(use_models, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FER_DEMO_MODE", raising=False)
    return tmp_path


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app_env, page):
    at = open_page(page)
    assert not at.exception, at.exception
    assert at.title[0].value


def test_home_shows_the_active_models_learning_curve(app_env):
    at = open_page("pages/home.py")
    assert not at.exception, at.exception
    labels = [e.label for e in at.expander]
    assert any(label.startswith("Learning curve (6 epochs, best") for label in labels), labels
    assert len(at.get("plotly_chart")) == 2  # loss / accuracy / macro-F1, and recall per class
    made = next(c.value for c in at.caption if c.value.startswith("Trained on "))
    assert ": 6 epochs (best " in made  # how it was made, as `models NAME` says it


def test_pages_without_any_model_say_so(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "empty"))
    for page in PAGES:
        at = open_page(page)
        assert not at.exception, (page, at.exception)
    home = open_page("pages/home.py")
    assert any("No trained model is installed" in w.value for w in home.warning)


def test_active_model_naming_nothing_is_reported_not_replaced(app_env, use_models):
    (use_models / "active.txt").write_text("ghost\n")
    at = open_page("pages/batch.py")
    assert not at.exception, at.exception
    assert any("'ghost'" in e.value and "not usable" in e.value for e in at.sidebar.error)
    assert at.sidebar.selectbox(key="selected_model").value is None  # nothing chosen behind the user's back
    at.sidebar.selectbox(key="selected_model").set_value("tiny-test")
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="selected_model").value == "tiny-test"


def _png(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def test_corrupt_detector_file_is_reported_and_the_app_stays_up(app_env, tmp_path, monkeypatch):
    bad = tmp_path / "broken-yunet.onnx"
    bad.write_bytes(b"not a model" * 10)
    monkeypatch.setenv("FER_YUNET_MODEL", str(bad))
    at = open_page("pages/live.py")
    assert not at.exception, at.exception
    assert any("broken-yunet.onnx" in e.value for e in at.error), [e.value for e in at.error]
    at = open_page("pages/batch.py")
    at.file_uploader(key="batch_upload_Photos").set_value(
        [("a.png", _png(np.zeros((60, 60, 3), np.uint8)), "image/png")]
    )
    at.run()
    at.button(key="batch_start").click()
    at.run()
    assert not at.exception, at.exception
    assert any("broken-yunet.onnx" in e.value for e in at.error), [e.value for e in at.error]
    home = open_page("pages/home.py")
    assert not home.exception and home.title[0].value


def test_batch_page_labels_uploads_and_matches_cli(app_env, shared_fer, tmp_path):
    from fer_core.labeling import label_folder
    from fer_core.recognizer import EmotionRecognizer

    files = {"blank.png": _png(np.full((80, 80, 3), 200, np.uint8)), "broken.jpg": b"not an image"}
    samples = fer_samples("test", per_class=1)
    scene, _ = compose_scene([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in samples[:2]])
    files["scene.png"] = _png(scene)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("happy/inner.png", files["blank.png"])
        z.writestr("../evil.png", files["blank.png"])
        z.writestr("nested.zip", b"PK")
    at = open_page("pages/batch.py")
    uploads = [(n, d, "application/octet-stream") for n, d in files.items()] + [
        ("set.zip", zbuf.getvalue(), "application/zip")
    ]
    at.file_uploader(key="batch_upload_Photos").set_value(uploads)
    at.run()
    at.button(key="batch_start").click()
    at.run()
    assert not at.exception, at.exception
    rows = at.data_editor[0].value.to_dict("records")
    by_file = {r["file"]: r for r in rows}
    assert by_file["blank.png"]["status"] == "no_face"
    assert by_file["broken.jpg"]["status"] == "unreadable"
    assert "unsafe path" in by_file["set/../evil.png"]["detail"]
    assert by_file["set/nested.zip"]["detail"] == "nested zip ignored"
    assert by_file["set/happy/inner.png"]["status"] == "no_face"
    assert not (tmp_path / "evil.png").exists()
    # What happened is summed up at the top.
    assert any("faces** in 1 of" in m.value and "files could not be read" in m.value for m in at.markdown)
    # The same photos through the CLI's labelling give the same rows.
    folder = tmp_path / "same"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    out = tmp_path / "cli.csv"
    label_folder(folder, out, EmotionRecognizer.from_registry())
    import pandas as pd

    cli = pd.read_csv(out, keep_default_na=False).astype(str)
    page = pd.DataFrame([r for r in rows if r["file"] in files])[cli.columns]

    def norm(df):
        text = df.astype(object).where(df.notna(), "").astype(str)
        text = text.replace({r"\.0$": "", r"^(nan|None)$": ""}, regex=True)
        return text.sort_values(["file", "face"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(norm(cli), norm(page))
    _correct_and_save(at, rows, tmp_path)


def _correct_and_save(at: AppTest, rows: list[dict], tmp_path: Path) -> None:
    """Change a face's label in the editor, then save the corrections as a class-folder dataset."""
    index = next(i for i, r in enumerate(rows) if r["file"] == "scene.png")
    new_label = "surprise" if rows[index]["emotion"] != "surprise" else "sad"
    at.session_state["batch_editor"] = {
        "edited_rows": {index: {"label": new_label}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert any("1 corrected, 1 reviewed faces" in c.value for c in at.caption)
    # The model's answer stays beside the correction; the chart counts the label.
    table = at.data_editor[0].value
    assert table.loc[index, "emotion"] == rows[index]["emotion"]
    assert table.loc[index, "reviewed"]  # the corrected face is ticked, as it is counted
    assert "None" not in set(table["detail"].astype(str))  # empty cells are blank
    for hostile in ("../x", "/abs", "..", ""):  # typed names never become paths
        at.text_input(key="ds_name").set_value(hostile)
        at.button(key="save_ds").click()
        at.run()
        assert any("dataset name must be" in e.value for e in at.error), hostile
    assert not (tmp_path / "x").exists() and not (tmp_path / "data" / "x").exists()
    at.text_input(key="ds_name").set_value("fixes")
    at.button(key="save_ds").click()
    at.run()
    assert not at.exception, at.exception
    out = tmp_path / "data" / "corrections" / "fixes"
    manifest_first = (out / "manifest.csv").read_text()
    at.button(key="save_ds").click()  # the same name again: refused, the first set is kept
    at.run()
    assert any("already exists" in e.value for e in at.error)
    assert (out / "manifest.csv").read_text() == manifest_first
    manifest = (out / "manifest.csv").read_text()
    assert "scene.png" in manifest and ",True" in manifest
    assert list((out / new_label).glob("*.png"))
    from fer_core.datasets import load_class_folders

    assert len(load_class_folders(out)) == 1  # by default only the reviewed face
    at.radio(key="ds_which").set_value("All faces (unreviewed ones keep the model's label)")
    at.text_input(key="ds_name").set_value("everything")
    at.run()
    assert any("Unreviewed faces carry the model's own answers" in w.value for w in at.warning)
    at.button(key="save_ds").click()
    at.run()
    every = tmp_path / "data" / "corrections" / "everything"
    faces = sum(1 for r in rows if r["file"] == "scene.png")
    assert len(load_class_folders(every)) == faces
    evaluate = open_page("pages/evaluate.py")
    evaluate.radio(key="eval_source").set_value("Corrections dataset from the Batch page")
    evaluate.run()
    evaluate.selectbox(key="eval_corrections").set_value("everything")
    evaluate.run()
    assert any(f"{faces - 1} of {faces} labels in this set came from a model" in w.value for w in evaluate.warning)


def test_train_page_says_where_runs_and_models_go(app_env, use_models, monkeypatch):
    """The git hint is for the repository's own models/ only, not for a registry elsewhere."""
    caption = " ".join(c.value for c in open_page("pages/train.py").caption)
    assert str(app_env / "runs") in caption and str(use_models) in caption
    assert "git add" not in caption
    monkeypatch.delenv("FER_MODELS_DIR")
    caption = " ".join(c.value for c in open_page("pages/train.py").caption)
    assert str(REPO / "models") in caption and "git add -f models/NAME" in caption


def test_train_page_refuses_unsafe_model_names_and_upload_paths(app_env, tmp_path):
    at = open_page("pages/train.py")
    for hostile in (".", "..", "../x", str(tmp_path)):
        at.text_input(key="t_name").set_value(hostile)
        at.run()
        assert any("model name must be" in e.value for e in at.error), hostile
        assert at.button(key="t_start").disabled
    at.text_input(key="t_name").set_value("tiny-test")  # the registry's model: replacing needs consent
    at.run()
    assert any("already exists" in e.value for e in at.error)
    assert at.button(key="t_start").disabled
    at.checkbox(key="t_overwrite").check()
    at.run()
    assert not at.error and not at.button(key="t_start").disabled
    # A zip whose name a browser sent as an absolute path unpacks under the data folder only.
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for emotion in ("happy", "sad"):
            z.writestr(f"{emotion}/0.png", _png(np.full((48, 48, 3), 90, np.uint8)))
    at.radio(key="train_source").set_value("Upload a zip of class folders")
    at.run()
    target = tmp_path / "elsewhere"
    at.file_uploader(key="train_zip").set_value([(f"{target}.zip", zbuf.getvalue(), "application/zip")])
    at.run()
    assert not at.exception, at.exception
    assert not target.exists()
    unpacked = list((tmp_path / "data" / "uploads").glob("elsewhere-*"))
    assert len(unpacked) == 1
    assert sorted(p.parent.name for p in unpacked[0].rglob("*.png")) == ["happy", "sad"]


def test_evaluate_page_on_tiny_folder(app_env, tmp_path, capsys):
    data = write_class_folders(tmp_path / "labelled", per_class=5, seed=3, names={6: "surprised"})
    import shutil

    shutil.rmtree(data / "disgust")  # a class missing from the set
    (data / "robots").mkdir()  # unknown class names get a clear message
    cv2.imwrite(str(data / "robots" / "r.png"), np.zeros((48, 48), np.uint8))
    at = open_page("pages/evaluate.py")
    at.text_input(key="eval_path").set_value(str(data))
    at.run()
    assert not at.exception, at.exception
    assert any("robots" in w.value for w in at.warning)
    metrics = {m.label: m.value for m in at.metric}
    assert "Accuracy" in metrics and "Macro-F1" in metrics
    # CLI parity: `evaluate --json` gives the numbers the page shows for the same inputs.
    import json

    from fer_core.cli import main

    assert main(["evaluate", "--data", str(data), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert metrics["Accuracy"] == f"{cli['accuracy']:.1%}"
    assert metrics["Macro-F1"] == f"{cli['macro_f1']:.3f}"
    assert metrics[f"ECE (all {cli['n']:,} faces)"] == f"{cli['ece']:.3f}"
    table = next(d.value for d in at.dataframe if "class" in d.value.columns and "support" in d.value.columns)
    for name, m in cli["per_class"].items():
        row = table[table["class"] == name].iloc[0]
        assert (round(m["precision"], 4), round(m["recall"], 4), round(m["f1"], 4), m["support"]) == (
            row["precision"],
            row["recall"],
            row["f1"],
            row["support"],
        )
    assert cli["per_class"]["disgust"]["support"] == 0
    # The same parity with ten-view test-time augmentation chosen on the page and on the CLI.
    at.selectbox(key="eval_tta").set_value("crops")
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert main(["evaluate", "--data", str(data), "--tta", "crops", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert metrics["Accuracy"] == f"{cli['accuracy']:.1%}"
    assert metrics["Macro-F1"] == f"{cli['macro_f1']:.3f}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict, options: tuple[str, ...] = ()) -> subprocess.Popen:
    """The real app on a loopback port; waits for /_stcore/health.

    The server's output goes to a file (`proc.log_path`), never to an unread pipe: a full pipe
    would block the server's logging and stall every session once it had written 64 KiB.
    """
    log_path = Path(tempfile.gettempdir()) / f"fer-server-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            *options,
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()  # the child keeps its own handle
    proc.log_path = log_path
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise AssertionError(log_path.read_text()[-5000:])
    proc.kill()
    raise AssertionError("server did not become healthy: " + log_path.read_text()[-5000:])


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started by start_server, killing it if it does not exit in time."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_server_health(app_env):
    import os

    proc = start_server(free_port(), dict(os.environ))
    stop_server(proc)


def _evaluate_with_flip(data: Path) -> AppTest:
    """The Evaluate page on a labelled folder with flip test-time augmentation, checked to render."""
    at = open_page("pages/evaluate.py")
    at.selectbox(key="eval_tta").set_value("flip")
    at.text_input(key="eval_path").set_value(str(data))
    at.run()
    assert not at.exception, at.exception
    return at


def test_evaluate_page_calibration_saves_only_what_helps_and_can_undo(app_env, pattern_dataset, tmp_path):
    from fer_core.registry import get_model, save_calibration

    small = open_page("pages/evaluate.py")
    small.text_input(key="eval_path").set_value(str(write_class_folders(tmp_path / "small", per_class=3)))
    small.run()
    assert not small.exception and not any(b.key == "save_temp" for b in small.button)
    assert any("needs at least 200 labelled faces" in c.value for c in small.caption)
    # A badly underconfident temperature for TTA "flip": a fitted one must do better on held-out faces.
    plain = get_model("tiny-test").card["calibration"]["temperature"]
    save_calibration("tiny-test", {"temperature": 20.0, "fitted_on": "a bad fit"}, tta="flip")
    at = _evaluate_with_flip(pattern_dataset)
    assert any("Both measured on the same" in c.value for c in at.caption)
    at.button(key="save_temp").click()
    at.run()
    assert not at.exception, at.exception
    saved = get_model("tiny-test").card["calibration"]["by_tta"]["flip"]
    assert saved["temperature"] < 20.0 and saved["n_fit"] + saved["n_eval"] == 210
    assert saved["ece_after"] < saved["ece_before"] and "210 labelled faces" in saved["fitted_on"]
    assert get_model("tiny-test").card["calibration"]["temperature"] == plain  # plain predictions keep theirs
    at.button(key="undo_temp").click()
    at.run()
    assert get_model("tiny-test").temperature_for("flip") == 20.0
    # Right after saving, the same fit no longer improves anything: no save button is offered.
    save_calibration("tiny-test", saved, tta="flip")
    again = _evaluate_with_flip(pattern_dataset)
    assert any("nothing to save" in i.value for i in again.info)
    assert not any(b.key == "save_temp" for b in again.button)


def test_live_video_clip_uses_min_face_and_is_processed_once(app_env, shared_fer, tmp_path):
    from fer_core.detect import YuNetDetector

    clip = write_two_face_clip(tmp_path / "clip.mp4")
    at = open_page("pages/live.py")
    at.file_uploader(key="live_clip").set_value([("clip.mp4", clip.read_bytes(), "video/mp4")])
    at.run()
    assert not at.exception, at.exception
    assert any("Processed 8 frames" in s.value and "2 faces tracked" in s.value for s in at.success), at.success
    first = at.session_state["live_clip_result"]
    at.run()  # any rerun (a download click, a widget) reuses the result
    assert at.session_state["live_clip_result"] is first
    at.selectbox(key="live_tta").set_value("flip")  # another TTA mode is another result
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["live_clip_result"] is not first
    assert any("2 faces tracked" in s.value for s in at.success), [s.value for s in at.success]
    smallest = at.number_input(key="live_clip_min_face").value
    assert smallest == YuNetDetector().min_face < 40  # the detector's own smallest face, not the webcam's 40
    assert at.get("video") and not at.exception  # the annotated clip plays on the page
    at.number_input(key="live_clip_min_face").set_value(200)
    at.run()
    assert any("0 faces tracked" in s.value for s in at.success), [s.value for s in at.success]


def test_evaluate_follows_the_sidebar_model_takes_a_wrapped_zip_and_drops_a_broken_compare(
    app_env, use_models, pattern_dataset
):
    import shutil

    from fer_core.registry import get_model

    # A second model, registered later, whose weights then break on disk.
    shutil.copytree(use_models / "tiny-test", use_models / "aaa-broken")
    card = get_model("aaa-broken").card
    (use_models / "aaa-broken" / "card.json").write_text(__import__("json").dumps({**card, "name": "aaa-broken"}))
    at = open_page("pages/evaluate.py")
    # It opens on the active model (not the first name alphabetically), as the sidebar says.
    assert at.sidebar.selectbox(key="selected_model").value == "tiny-test"
    assert any("Model: **tiny-test**" in c.value for c in at.caption)
    # "Compress this folder" wraps the class folders in one top folder.
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for path in sorted(pattern_dataset.rglob("*.png"))[::5]:
            z.write(path, f"my-set/{path.relative_to(pattern_dataset)}")
    at.radio(key="eval_source").set_value("Upload a zip of class folders")
    at.run()
    at.file_uploader(key="eval_zip").set_value([("my-set.zip", zbuf.getvalue(), "application/zip")])
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert {m.label for m in at.metric} >= {"Accuracy", "Macro-F1"}
    at.selectbox(key="eval_compare").set_value("aaa-broken")
    at.run()
    assert not at.exception and any("measure" in d.value.columns for d in at.dataframe)
    # Its weights break on disk: it is reported, no longer offered, and the page stays up.
    (use_models / "aaa-broken" / "model.tflite").write_bytes(b"broken")
    at.run()
    assert not at.exception, at.exception
    assert any("aaa-broken is unusable" in w.value for w in at.sidebar.warning)
    assert "aaa-broken" not in at.selectbox(key="eval_compare").options


def test_evaluate_drill_down_pages_through_every_image_of_a_cell(app_env, tmp_path, capsys):
    import json

    from fer_core.classes import EMOTIONS
    from fer_core.cli import main
    from fer_ui.evaluate import PER_PAGE, cell_from_selection

    # A click on the matrix's click layer gives the predicted class as x and the true class as y.
    assert cell_from_selection([{"x": "sad", "y": "happy", "curve_number": 1}]) == ("happy", "sad")
    assert cell_from_selection([{"x": 3, "y": 0.5}]) is None
    data = write_class_folders(tmp_path / "many", per_class=60, seed=5)
    assert main(["evaluate", "--data", str(data), "--json"]) == 0
    matrix = json.loads(capsys.readouterr().out)["confusion_matrix"]
    count, true, predicted = max((v, t, p) for t, row in enumerate(matrix) for p, v in enumerate(row))
    assert count > PER_PAGE  # the tiny model learns the patterns: its biggest cell spans pages
    at = open_page("pages/evaluate.py")
    at.text_input(key="eval_path").set_value(str(data))
    at.run()
    at.selectbox(key="cell_true").set_value(EMOTIONS[true])
    at.selectbox(key="cell_pred").set_value(EMOTIONS[predicted])
    at.run()
    assert not at.exception, at.exception
    pages = -(-count // PER_PAGE)
    assert any(
        c.value.startswith(f"{count} images are") and f"page 1 of {pages} shows 1-{PER_PAGE}," in c.value
        for c in at.caption
    )
    at.number_input(key="cell_page").set_value(pages)
    at.run()
    assert any(f"page {pages} of {pages} shows {(pages - 1) * PER_PAGE + 1}-{count}," in c.value for c in at.caption)


def test_a_new_batch_drops_the_last_ones_files_and_downloads(app_env):
    photo = _png(np.full((80, 80, 3), 120, np.uint8))
    at = open_page("pages/batch.py")
    at.file_uploader(key="batch_upload_Photos").set_value([("first.png", photo, "image/png")])
    at.run()
    at.button(key="batch_start").click()
    at.run()
    at.button(key="prep_annotated").click()
    at.run()
    assert "annotated_zip" in at.session_state
    first_dir = at.session_state["batch_state"]["dir"]
    assert first_dir.is_dir()
    at.file_uploader(key="batch_upload_Photos").set_value([("second.png", photo, "image/png")])
    at.run()
    at.button(key="batch_start").click()
    at.run()
    assert not at.exception, at.exception
    assert "annotated_zip" not in at.session_state  # the earlier batch's zip is no longer offered
    assert not first_dir.exists()  # nor kept on disk
    assert set(at.data_editor[0].value["file"]) == {"second.png"}


def test_an_uploaded_zip_is_unpacked_once_per_zip(app_env, pattern_dataset):
    def zipped(step: int) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for path in sorted(pattern_dataset.rglob("*.png"))[::step]:
                z.write(path, str(path.relative_to(pattern_dataset)))
        return buf.getvalue()

    at = open_page("pages/evaluate.py")
    at.radio(key="eval_source").set_value("Upload a zip of class folders")
    at.run()
    at.file_uploader(key="eval_zip").set_value([("a.zip", zipped(3), "application/zip")])
    at.run()
    first = at.session_state["eval_zip_set"]
    at.toggle(key="eval_norm").set_value(True)  # any rerun
    at.run()
    assert at.session_state["eval_zip_set"]["folder"] == first["folder"] and first["folder"].is_dir()
    at.file_uploader(key="eval_zip").set_value([("b.zip", zipped(4), "application/zip")])
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["eval_zip_set"]["folder"] != first["folder"] and not first["folder"].exists()


def test_batch_page_labels_a_local_folder_with_the_cli_engine(app_env, shared_fer, tmp_path):
    from fer_core.outputs import read_rows

    folder = tmp_path / "event"
    (folder / "day2").mkdir(parents=True)
    samples = fer_samples("test", per_class=1)
    for i in range(3):
        scene, _ = compose_scene([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p, _ in samples[i : i + 2]], seed=i)
        cv2.imwrite(str(folder / ("day2" if i else "") / f"scene{i}.jpg"), scene)
    (folder / "broken.jpg").write_bytes(b"not an image")
    at = open_page("pages/batch.py")
    at.radio(key="batch_how").set_value("A folder on this machine")
    at.run()
    at.text_input(key="batch_folder").set_value(str(folder))
    at.radio(key="batch_folder_format").set_value("parquet")
    at.number_input(key="batch_folder_workers").set_value(2)
    at.run()
    at.button(key="batch_start_folder").click()
    at.run()
    assert not at.exception, at.exception
    out = next((tmp_path / "data" / "labels").glob("event-*.parquet"))
    written, total = read_rows(out)
    rows = at.data_editor[0].value.to_dict("records")
    assert len(rows) == total == len(written) >= 5  # every row of the output is up for review
    assert {r["file"] for r in rows} == {"scene0.jpg", "day2/scene1.jpg", "day2/scene2.jpg", "broken.jpg"}
    assert any(str(out) in m.value for m in at.info)
    # the gallery reads the photos where they are
    assert not at.exception
    # a second run resumes: nothing is labelled twice
    at.button(key="batch_start_folder").click()
    at.run()
    assert read_rows(out)[1] == total
    # Test-time augmentation, labelled with the card's figures, writes its own output (never mixed
    # into the one without it) with the rows the CLI engine gives for that mode.
    tta = at.selectbox(key="batch_tta")
    assert any(o.startswith("flip: ") and o.endswith(" ms") for o in tta.options), tta.options
    tta.set_value("flip")
    at.run()
    at.button(key="batch_start_folder").click()
    at.run()
    assert not at.exception, at.exception
    flipped = next((tmp_path / "data" / "labels").glob("event-*-flip.parquet"))
    from fer_core.labeling import label_folder
    from fer_core.recognizer import EmotionRecognizer

    label_folder(folder, tmp_path / "cli-flip.csv", EmotionRecognizer.from_registry(tta="flip"))
    cli = {(r["file"], r["face"]): r["confidence"] for r in read_rows(tmp_path / "cli-flip.csv")[0]}
    page = {(r["file"], r["face"]): r["confidence"] for r in read_rows(flipped)[0]}
    plain = {(r["file"], r["face"]): r["confidence"] for r in written}
    assert page.keys() == cli.keys() == plain.keys()
    assert all(abs(float(page[k] or 0) - float(cli[k] or 0)) < 1e-6 for k in page)
    assert any(page[k] != plain[k] for k in page)


def test_batch_page_refuses_the_whole_machine_as_a_folder(app_env):
    at = open_page("pages/batch.py")
    at.radio(key="batch_how").set_value("A folder on this machine")
    at.run()
    for folder, words in (("/", "root of the file system"), ("/proc", "kernel's file systems")):
        at.text_input(key="batch_folder").set_value(folder)
        at.run()
        assert not at.exception, at.exception
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
        assert at.button(key="batch_start_folder").disabled


def test_demo_mode_offers_no_local_folders(app_env, monkeypatch):
    monkeypatch.setenv("FER_DEMO_MODE", "1")
    at = open_page("pages/batch.py")
    assert "A folder on this machine" not in at.radio(key="batch_how").options


def test_live_downloads_say_why_when_there_is_nothing_yet(app_env):
    at = open_page("pages/live.py")
    at.button(key="live_prepare").click()
    at.run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any("No snapshot: no frame has arrived yet" in c for c in captions), captions
    assert any("No session CSV: no face has been seen yet" in c for c in captions), captions


def test_evaluate_measures_the_model_on_several_sets_side_by_side(app_env, pattern_dataset, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(pattern_dataset, other)
    shutil.rmtree(other / "disgust")
    at = open_page("pages/evaluate.py")
    at.text_input(key="eval_path").set_value(str(pattern_dataset))
    at.run()
    at.multiselect(key="eval_more_sets").set_value([])
    at.text_input(key="eval_more_paths").set_value(f"{other}; {tmp_path / 'missing'}")
    at.run()
    at.button(key="eval_more_go").click()
    at.run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "set" in d.value.columns)
    assert list(table["faces"]) == [210, 180]  # the chosen set, then the other one
    assert all(0 <= float(a) <= 1 for a in table["accuracy"])
    assert any("missing" in w.value for w in at.warning)  # a set that cannot be read is said, the rest measured

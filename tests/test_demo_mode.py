"""Demo mode (a public link): no server paths, no writes, stricter uploads; and sessions kept apart."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.test_app import open_page

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo(use_models, tmp_path, monkeypatch):
    from streamlit import config

    monkeypatch.setenv("FER_DEMO_MODE", "1")
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "data"))
    # Demo mode lowers server options for the whole process; give other tests theirs back.
    saved = {k: config.get_option(k) for k in ("server.maxUploadSize", "client.showErrorDetails")}
    yield tmp_path
    for key, value in saved.items():
        config.set_option(key, value)


def test_server_refuses_big_uploads_and_hides_tracebacks(demo):
    from streamlit import config

    at = open_page("pages/home.py")
    assert not at.exception
    # The server's upload handler reads this on every request (HTTP 413 above it).
    assert config.get_option("server.maxUploadSize") == 50
    assert config.get_option("client.showErrorDetails") == "none"


def _keys(at: AppTest, kind: str) -> set[str]:
    return {w.key for w in at.get(kind) if getattr(w, "key", None)}


def test_train_page_is_off(demo):
    at = open_page("pages/train.py")
    assert not at.exception
    assert any("Training is switched off" in i.value for i in at.info)
    assert not at.button and not at.text_input
    assert not (demo / "runs").exists()


def test_evaluate_takes_uploads_only(demo):
    at = open_page("pages/evaluate.py")
    assert not at.exception
    assert "eval_path" not in _keys(at, "text_input")
    assert [r.options for r in at.radio if r.key == "eval_source"] == [
        ["Upload a zip of class folders", "FER-2013 test set (built in)"]
    ]
    assert at.file_uploader(key="eval_zip").proto.max_upload_size_mb == 50


def test_demo_evaluates_the_built_in_set_and_says_when_calibration_is_out_of_reach(demo, pattern_dataset, monkeypatch):
    import fer_ui.evaluate

    monkeypatch.setattr(fer_ui.evaluate, "DEFAULT_SET", pattern_dataset)  # the server's set, small here
    at = open_page("pages/evaluate.py")
    at.radio(key="eval_source").set_value("FER-2013 test set (built in)")
    at.run()
    assert not at.exception, at.exception
    assert any("210 labelled faces" in c.value for c in at.caption)
    texts = [m.value for kind in ("caption", "markdown", "info", "warning", "error") for m in at.get(kind)]
    assert not any(str(pattern_dataset) in t for t in texts)  # no server path
    # a zip under the demo's file cap cannot be calibrated: said where the button would be
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(pattern_dataset.rglob("*.png"))[:40]:
            z.write(path, str(path.relative_to(pattern_dataset)))
    at.radio(key="eval_source").set_value("Upload a zip of class folders")
    at.run()
    at.file_uploader(key="eval_zip").set_value([("small.zip", buf.getvalue(), "application/zip")])
    at.run()
    assert not at.exception, at.exception
    assert any("too few to calibrate" in c.value and "built-in FER-2013 test set" in c.value for c in at.caption)


def test_batch_page_writes_nothing_and_caps_uploads(demo):
    at = open_page("pages/batch.py")
    assert at.file_uploader(key="batch_upload_Photos").proto.max_upload_size_mb == 50
    assert any("Up to 50 photos and 100 MB per batch" in c.value for c in at.caption)  # every cap said
    png = cv2.imencode(".png", np.full((60, 60, 3), 90, np.uint8))[1].tobytes()
    at.file_uploader(key="batch_upload_Photos").set_value([(f"p{i}.png", png, "image/png") for i in range(55)])
    at.run()
    at.button(key="batch_start").click()
    at.run()
    assert not at.exception
    rows = at.data_editor[0].value
    assert (rows["detail"].str.contains("over the limit of 50 files")).sum() == 5
    assert "save_ds" not in _keys(at, "button")
    assert any("Saving datasets on the server is switched off" in i.value for i in at.info)
    assert not (demo / "data").exists()


def test_a_broken_zip_is_one_clear_message(demo):
    at = open_page("pages/batch.py")
    at.radio(key="batch_how").set_value("A zip of folders")
    at.run()
    at.file_uploader(key="batch_upload_A zip of folders").set_value([("set.zip", b"not a zip", "application/zip")])
    at.run()
    at.button(key="batch_start").click()
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["None of the 1 files could be read as a photo: not a valid zip archive (1)"]
    assert not at.data_editor  # no table of empty cells


def test_home_says_demo(demo):
    at = open_page("pages/home.py")
    assert any("Public demo" in i.value and "training" in i.value for i in at.info)
    assert not any("(**Train**)" in m.value for m in at.markdown)  # never offered above "training is off"


def test_local_mode_keeps_everything(use_models, tmp_path, monkeypatch):
    monkeypatch.delenv("FER_DEMO_MODE", raising=False)
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    at = open_page("pages/evaluate.py")
    assert "eval_path" in _keys(at, "text_input")
    train = open_page("pages/train.py")
    assert "t_start" in _keys(train, "button")


def test_sessions_do_not_share_results_or_files(use_models):
    """Several sessions at once: each sees only its own uploads, in its own temporary folder."""
    blank = cv2.imencode(".png", np.full((60, 60, 3), 90, np.uint8))[1].tobytes()
    sessions = [open_page("pages/batch.py") for _ in range(3)]
    for i, at in enumerate(sessions):
        at.file_uploader(key="batch_upload_Photos").set_value(
            [(f"mine-{i}-{j}.png", blank, "image/png") for j in range(i + 1)]
        )
        at.run()
        at.button(key="batch_start").click()

    threads = [threading.Thread(target=at.run) for at in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folders = set()
    for i, at in enumerate(sessions):
        assert not at.exception, at.exception
        files = set(at.data_editor[0].value["file"])
        assert files == {f"mine-{i}-{j}.png" for j in range(i + 1)}
        folders.add(at.session_state["batch_tmp"])
    assert len(folders) == 3


def test_evaluate_uploads_keep_the_demo_pixel_cap(demo, pattern_dataset):
    import io
    import zipfile

    big = cv2.imencode(".png", np.zeros((3100, 4000), np.uint8))[1].tobytes()  # 12.4 MP, over the demo's 12
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(pattern_dataset.rglob("*.png"))[::5]:  # 42 files: under the demo's 50
            z.write(path, str(path.relative_to(pattern_dataset)))
        z.writestr("happy/huge.png", big)
    at = open_page("pages/evaluate.py")
    at.file_uploader(key="eval_zip").set_value([("set.zip", buf.getvalue(), "application/zip")])
    at.run()
    assert not at.exception, at.exception
    shown = [w.value for w in at.warning] + [e.value for e in at.error] + [i.value for i in at.info]
    assert any("over the limit of 12,000,000" in text for text in shown), shown


def test_a_zip_over_the_demo_file_cap_says_why(demo, pattern_dataset):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(pattern_dataset.rglob("*.png"))[:60]:
            z.write(path, str(path.relative_to(pattern_dataset)))
    at = open_page("pages/evaluate.py")
    at.file_uploader(key="eval_zip").set_value([("big.zip", buf.getvalue(), "application/zip")])
    at.run()
    assert not at.exception, at.exception
    shown = [w.value for w in at.warning] + [e.value for e in at.error]
    # one message, with the limit, and no server path
    assert any("zip holds 60 files" in text and "the limit is 50 files" in text for text in shown), shown
    assert not any("/tmp" in text or "No images in class folders" in text for text in shown), shown


def test_no_server_path_in_what_the_demo_shows_of_a_changed_model(demo, use_models):
    weights = use_models / "tiny-test" / "model.tflite"
    weights.write_bytes(weights.read_bytes() + b"changed")
    for page in ("pages/home.py", "pages/batch.py", "pages/evaluate.py", "pages/live.py"):
        at = open_page(page)
        assert not at.exception, at.exception
        shown = [m.value for kind in ("error", "warning", "info", "caption", "markdown") for m in at.get(kind)]
        assert any("model.tflite" in text for text in shown), (page, shown)  # the problem is still named
        assert not any(str(use_models) in text for text in shown), (page, shown)

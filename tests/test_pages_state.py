"""Choices that must hold for the whole browser session, whatever page runs in between."""

from __future__ import annotations

import shutil

from tests.test_app import app_env, open_page  # noqa: F401  (the fixture is used by name)


def test_the_model_picked_in_the_sidebar_holds_on_every_page(app_env, use_models):  # noqa: F811
    shutil.copytree(use_models / "tiny-test", use_models / "tiny-copy")
    at = open_page("pages/home.py")
    assert at.sidebar.selectbox(key="selected_model").value == "tiny-test"  # the active one
    at.sidebar.selectbox(key="selected_model").set_value("tiny-copy")
    at.run()
    # Train draws no model menu: Streamlit drops the menu's state there, the choice must survive it
    for page in ("pages/live.py", "pages/train.py", "pages/evaluate.py", "pages/train.py", "pages/batch.py"):
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, at.exception)
        if page != "pages/train.py":
            assert at.sidebar.selectbox(key="selected_model").value == "tiny-copy", page
    at.switch_page("pages/home.py")
    at.run()
    assert at.sidebar.selectbox(key="selected_model").value == "tiny-copy"
    shown = [m.value for m in at.markdown] + [m.value for m in at.title] + [m.value for m in at.subheader]
    assert any("tiny-copy" in (text or "") for text in shown), "Home shows the chosen model"


def test_a_runs_phases_only_move_forward(tmp_path):
    from fer_core.train.events import append_event
    from fer_core.train.jobs import run_status

    run = tmp_path / "run"
    run.mkdir()
    append_event(run, "started")
    assert run_status(run, alive=True) == "running"
    (run / "STOP").touch()
    assert run_status(run, alive=True) == "stopping"
    seen = []
    for kind in ("stopping", "exporting", "unlabelled", "evaluating", "batch"):
        append_event(run, kind)
        seen.append(run_status(run, alive=True))
    assert seen == ["stopping", "exporting", "exporting", "evaluating", "evaluating"]
    append_event(run, "stopped")
    assert run_status(run, alive=False) == "stopped"
    append_event(run, "resumed")  # a new process: back to training
    (run / "STOP").unlink()
    assert run_status(run, alive=True) == "running"

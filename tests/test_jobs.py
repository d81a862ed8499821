"""Training jobs from the app: one-run lock, stale locks, stop and resume, and the Train page."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_core.train.config import TrainConfig
from fer_core.train.events import read_events
from fer_core.train.jobs import JobError, JobManager, process_alive, run_status


def _config(data: Path, models: Path, epochs: int = 30, name: str = "from-job") -> TrainConfig:
    return TrainConfig(
        data=str(data),
        architecture="tiny",
        epochs=epochs,
        batch_size=8,
        patience=0,
        precision="float32",
        register_as=name,
        models_dir=str(models),
        warmup_epochs=0,
    )


def _wait(predicate, timeout=120, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_stale_lock_is_cleared(tmp_path):
    manager = JobManager(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "active.json").write_text(json.dumps({"run_dir": "x", "pid": dead.pid, "started": 0}))
    assert manager.active() is None
    assert not (tmp_path / "active.json").exists()
    (tmp_path / "active.json").write_text("{garbage")
    assert manager.active() is None
    assert not process_alive(dead.pid)


@pytest.mark.slow
def test_one_run_at_a_time_stop_and_resume(pattern_dataset, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    manager = JobManager(tmp_path / "runs")
    job = manager.start(_config(pattern_dataset, models), "first")
    assert manager.active()["pid"] == job["pid"]
    with pytest.raises(JobError, match="already in progress: .*first"):
        manager.start(_config(pattern_dataset, models), "second")
    run_dir = tmp_path / "runs" / "first"
    _wait(lambda: any(e["type"] == "epoch" for e in read_events(run_dir)), what="first epoch")
    assert manager.runs()[0]["status"] == "running"
    assert manager.stop()
    _wait(lambda: manager.active() is None, what="the job to stop")
    assert run_status(run_dir, False) == "stopped"
    done = read_events(run_dir)[-1]["epochs_done"]
    with pytest.raises(JobError, match="already exists"):
        manager.start(_config(pattern_dataset, models), "first")
    config = json.loads((run_dir / "config.json").read_text())
    config["epochs"] = done + 1
    (run_dir / "config.json").write_text(json.dumps(config))
    manager.resume("first")
    _wait(lambda: manager.active() is None, what="the resumed job to finish")
    assert run_status(run_dir, False) == "finished"
    assert [r["status"] for r in manager.runs()] == ["finished"]
    log = manager.log_tail("first", lines=1000)
    assert "finished" in log and f"resuming at epoch {done + 1} of {done + 1}" in log
    assert f"epoch {done + 1}/{done + 1}: loss" in log  # the page's log tail follows the epochs too


@pytest.mark.slow
def test_killed_job_shows_as_interrupted(pattern_dataset, tmp_path):
    import os
    import signal

    manager = JobManager(tmp_path / "runs")
    job = manager.start(_config(pattern_dataset, tmp_path, epochs=50), "crashy")
    _wait(lambda: any(e["type"] == "epoch" for e in read_events(tmp_path / "runs" / "crashy")), what="an epoch")
    os.kill(job["pid"], signal.SIGKILL)  # a crash: no chance to write a final event
    _wait(lambda: manager.active() is None, what="the lock to go stale")
    assert manager.runs()[0]["status"] == "interrupted"


@pytest.mark.slow
def test_a_run_trained_from_the_shell_shows_on_the_page_and_stops_there(
    use_models, pattern_dataset, tmp_path, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "runs"
    run_dir = root / "from-shell"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer_core", "train", "--data", str(pattern_dataset), "--architecture", "tiny"]
        + ["--epochs", "200", "--batch-size", "8", "--patience", "0", "--run-dir", str(run_dir)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: any(e["type"] == "epoch" for e in read_events(run_dir)), what="an epoch")
    manager = JobManager(root)
    assert manager.active() is None  # not this server's job...
    assert manager.runs()[0]["status"] == "running"  # ...but running all the same
    with pytest.raises(JobError, match="being trained by another process"):
        manager.resume("from-shell")
    monkeypatch.setenv("FER_RUNS_DIR", str(root))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert any("Run `from-shell`: running" in m.value for m in at.markdown), [m.value for m in at.markdown]
    at.button(key="t_stop").click()
    at.run()
    assert not at.exception, at.exception
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert read_events(run_dir)[-1]["type"] == "stopped"
    assert manager.runs()[0]["status"] == "stopped"
    assert manager.stop("from-shell") is False  # nothing runs there any more


@pytest.mark.slow
def test_a_run_trained_from_the_shell_is_watched_and_stopped_from_another_shell(use_models, pattern_dataset, tmp_path):
    root = tmp_path / "runs"
    run_dir = root / "watched"
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer_core", "train", "--data", str(pattern_dataset), "--architecture", "tiny"]
        + ["--epochs", "200", "--batch-size", "8", "--patience", "0", "--run-dir", str(run_dir)],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def runs(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "fer_core", "runs", *args, "--runs-dir", str(root)]
        return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60)

    _wait(lambda: any(e["type"] == "epoch" for e in read_events(run_dir)), what="an epoch")
    listed = runs()
    assert listed.returncode == 0, listed.stderr
    assert next(line for line in listed.stdout.splitlines() if line.startswith("watched")).split()[1] == "running"
    shown = runs("watched", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["run"]["status"] == "running" and doc["epochs"][0]["epoch"] == 1
    stop = runs("watched", "--stop")
    assert stop.returncode == 0 and "Asked watched to stop" in stop.stdout, stop.stderr
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    after = runs("watched")
    assert after.stdout.startswith("watched: stopped"), after.stdout
    assert "no model registered" in after.stdout  # the run named none
    assert f"python -m fer_core train --resume {run_dir}" in after.stdout
    assert runs("watched", "--stop").returncode == 2  # nothing runs there any more


@pytest.mark.slow
def test_train_page_end_to_end(use_models, pattern_dataset, tmp_path, monkeypatch):
    """Start a real tiny run from the page, see progress, stop it, get a model the Batch page can use."""
    from streamlit.testing.v1 import AppTest

    from fer_core.registry import list_model_names

    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "data"))
    repo = Path(__file__).resolve().parents[1]
    at = AppTest.from_file(str(repo / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    at.text_input(key="train_path").set_value(str(pattern_dataset))
    at.selectbox(key="t_arch").set_value("tiny")
    at.number_input(key="t_epochs").set_value(40)
    at.text_input(key="t_name").set_value("page-model")
    at.run()
    assert not at.exception, at.exception
    assert at.get("plotly_chart"), "the dataset summary chart is shown before start"
    at.button(key="t_start").click()
    at.run()
    assert not at.exception, at.exception
    manager = JobManager(tmp_path / "runs")
    run_name = manager.runs()[0]["name"]
    # The new run shows at once, running, with its Stop button (no reload needed).
    assert any(f"Run `{run_name}`: running" in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert at.button(key="t_stop")
    # A second start is refused with a message naming the running job.
    at.button(key="t_start").click()
    at.run()
    assert any("already in progress" in e.value and run_name in e.value for e in at.error)
    _wait(lambda: any(e["type"] == "epoch" for e in read_events(manager.root / run_name)), what="progress")
    at.run()
    assert any("running" in m.value for m in at.markdown)
    at.button(key="t_stop").click()
    at.run()
    # Each phase shows as it happens; table, panel and buttons agree on it.
    shown = {m.value for m in at.markdown if m.value.startswith(f"**Run `{run_name}`")}
    assert shown & {f"**Run `{run_name}`: {p}**" for p in ("stopping", "exporting", "evaluating", "stopped")}, shown
    assert not any(b.key == "t_stop" for b in at.button)
    _wait(lambda: manager.active() is None, what="stop")
    at.run()
    assert not at.exception, at.exception
    assert manager.runs()[0]["status"] == "stopped"
    assert at.dataframe[0].value.iloc[0]["status"] == "stopped"
    assert any(f"**Run `{run_name}`: stopped**" == m.value for m in at.markdown)
    assert any("Registered as model page-model" in s.value for s in at.success)
    assert not any(b.key == "t_stop" for b in at.button)
    assert not any("ETA" in str(p.value) for p in at.get("progress"))
    assert "page-model" in list_model_names(use_models)
    # Activating shows both models' figures first.
    assert any("Active now: **tiny-test**" in m.value and "New: **page-model**" in m.value for m in at.markdown)
    # A second run started in the same browser session is the one shown, not the first.
    at.text_input(key="t_name").set_value("page-model-2")
    at.run()
    at.button(key="t_start").click()
    at.run()
    assert not at.exception, at.exception
    second = next(r["name"] for r in manager.runs() if r["name"] != run_name)
    assert at.selectbox(key="t_show").value == second
    assert any(f"Run `{second}`: running" in m.value for m in at.markdown), [m.value for m in at.markdown]
    manager.stop(second)
    _wait(lambda: manager.active() is None, what="the second run's stop")
    # The Batch page can now choose and use the new model.
    batch = AppTest.from_file(str(repo / "app.py"), default_timeout=120)
    batch.run()
    batch.switch_page("pages/batch.py")
    batch.run()
    batch.selectbox(key="selected_model").set_value("page-model")
    import cv2
    import numpy as np

    blank = cv2.imencode(".png", np.full((60, 60, 3), 90, np.uint8))[1].tobytes()
    batch.file_uploader(key="batch_upload_Photos").set_value([("x.png", blank, "image/png")])
    batch.run()
    batch.button(key="batch_start").click()
    batch.run()
    assert not batch.exception, batch.exception
    assert batch.data_editor[0].value.iloc[0]["status"] == "no_face"
    assert batch.session_state["batch_state"]["model"] == "page-model"


def test_activating_a_less_accurate_model_needs_a_confirm(use_models, tmp_path, monkeypatch):
    """The Train page shows both models' figures; a worse one is not promoted by one click."""
    import json
    import shutil

    from streamlit.testing.v1 import AppTest

    from fer_core.registry import active_model_name, get_model

    shutil.copytree(use_models / "tiny-test", use_models / "worse-model")
    card = get_model("worse-model").card
    worse = json.loads(json.dumps(card["metrics"]))
    worse["validation"]["accuracy"] = card["metrics"]["validation"]["accuracy"] - 0.3
    (use_models / "worse-model" / "card.json").write_text(json.dumps({**card, "name": "worse-model", "metrics": worse}))
    runs = tmp_path / "runs"
    run = runs / "old-run"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"data": "x", "architecture": "tiny", "epochs": 1}))
    (run / "events.jsonl").write_text(
        json.dumps({"type": "started", "time": 1.0, "config": {"epochs": 1}})
        + "\n"
        + json.dumps({"type": "finished", "time": 2.0, "model": "worse-model"})
        + "\n"
    )
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, at.exception
    assert at.button(key="activate:worse-model").disabled
    at.checkbox(key="confirm_activate:worse-model").check()
    at.run()
    at.button(key="activate:worse-model").click()
    at.run()
    assert active_model_name() == "worse-model"

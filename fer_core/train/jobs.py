"""Training jobs for the app: one run at a time per server, each in its own process.

A lock file `<runs>/active.json` names the running job (run folder and pid). It is created
atomically, and a lock whose process is gone (crash, reboot) is treated as stale and removed.
A run trained by another process (`python -m fer_core train` in a shell) shows as running too,
through its run folder's lock (`fer_core.train.folder_lock`), and can be stopped from here.
This module imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fer_core.paths import REPO_ROOT, runs_dir
from fer_core.train.config import TrainConfig
from fer_core.train.events import finished_epochs, read_events
from fer_core.train.folder_lock import folder_held, process_alive

LOCK_FILE = "active.json"
LOG_FILE = "log.txt"


class JobError(RuntimeError):
    """A job cannot be started or found; the message says why."""


ENDS = ("finished", "stopped", "failed")
PHASES = ("stopping", "exporting", "evaluating")
"""Events a live run writes after training proper, shown as its status until it ends."""


def run_status(run_dir: Path, alive: bool) -> str:
    """The one status of a run, for every place that shows it.

    While its process lives: "running", or the phase it is in ("stopping", "exporting",
    "evaluating"). Afterwards: "finished", "stopped" or "failed" from its last event,
    "interrupted" when it ended without one, "new" when it never started.
    """
    events = read_events(run_dir)
    milestones = [e["type"] for e in events if e["type"] not in ("batch", "epoch")]
    if alive:
        # Phases only move forward within the current process: the furthest one reached since the
        # run last started or resumed (an end event before that was an earlier process's).
        starts = [i for i, t in enumerate(milestones) if t in ("started", "resumed") or t in ENDS]
        current = milestones[starts[-1] + 1 :] if starts else milestones
        reached = max((PHASES.index(t) for t in current if t in PHASES), default=-1)
        # A stop was asked for and the run has not yet seen it (it checks between batches).
        if reached < 0 and (run_dir / "STOP").exists():
            return "stopping"
        return PHASES[reached] if reached >= 0 else "running"
    last = next((t for t in reversed(milestones) if t not in PHASES), None)
    if last in ENDS:
        return last
    return "interrupted" if events else "new"


class JobManager:
    """Starts, stops and lists training runs below `root` (default: `runs_dir()`)."""

    def __init__(self, root: Path | None = None):
        self.root = root or runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = self.root / LOCK_FILE

    def active(self) -> dict | None:
        """The running job ({"run_dir", "pid", "started"}), or None; clears a stale lock."""
        try:
            job = json.loads(self.lock.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError):
            self.lock.unlink(missing_ok=True)
            return None
        if not process_alive(int(job.get("pid", -1))):
            self.lock.unlink(missing_ok=True)
            return None
        return job

    def _claim(self) -> int:
        job = self.active()
        if job is not None:
            raise JobError(f"A training run is already in progress: {job['run_dir']}")
        try:
            return os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError as e:
            raise JobError("Another training run was started at the same moment; try again.") from e

    def _spawn(self, run_dir: Path, args: list[str]) -> dict:
        fd = self._claim()
        try:
            log = (run_dir / LOG_FILE).open("a")
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
            proc = subprocess.Popen(
                [sys.executable, "-m", "fer_core", "train", *args],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
            job = {"run_dir": str(run_dir), "pid": proc.pid, "started": time.time()}
            os.write(fd, json.dumps(job).encode())
        except BaseException:
            self.lock.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return job

    def start(self, config: TrainConfig, name: str) -> dict:
        """Start a new run named `name` in its own process.

        Raises:
            JobError: a run is in progress, or the run folder already exists.
        """
        run_dir = self.root / name
        job = self.active()
        if job is not None:
            raise JobError(f"A training run is already in progress: {job['run_dir']}")
        if run_dir.exists():
            raise JobError(f"A run named {name!r} already exists in {self.root}")
        run_dir.mkdir(parents=True)
        config.save(run_dir / "config.json")
        try:
            return self._spawn(run_dir, ["--config", str(run_dir / "config.json"), "--run-dir", str(run_dir)])
        except JobError:
            shutil.rmtree(run_dir, ignore_errors=True)  # lost a race for the lock: leave no empty run behind
            raise

    def resume(self, name: str) -> dict:
        """Continue an interrupted or stopped run from its last checkpoint."""
        run_dir = self.root / name
        if not (run_dir / "config.json").is_file():
            raise JobError(f"No run named {name!r} in {self.root}")
        if folder_held(run_dir):
            raise JobError(f"{name!r} is being trained by another process; stop it first")
        (run_dir / "STOP").unlink(missing_ok=True)  # the last stop request is done with
        return self._spawn(run_dir, ["--resume", str(run_dir)])

    def stop(self, name: str | None = None) -> bool:
        """Ask a running run to stop after its current batch: the run `name` (this server's job or
        one trained by another process), else this server's job. False when it is not running."""
        job = self.active()
        ours = Path(job["run_dir"]) if job else None
        run_dir = self.root / name if name else ours
        if run_dir is None or (run_dir != ours and not folder_held(run_dir)):
            return False
        (run_dir / "STOP").touch()
        return True

    def runs(self) -> list[dict]:
        """Every run, newest first: name, status, settings and best validation figures."""
        job = self.active()
        active_dir = job["run_dir"] if job else None
        rows = []
        for run_dir in sorted(
            (p for p in self.root.iterdir() if (p / "config.json").is_file()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        ):
            events = read_events(run_dir)
            epochs = finished_epochs(events)
            best = max(epochs, key=lambda e: e["val_accuracy"], default=None)
            final = next((e for e in reversed(events) if e["type"] in ("finished", "stopped", "failed")), {})
            config = json.loads((run_dir / "config.json").read_text())
            rows.append(
                {
                    "name": run_dir.name,
                    "status": run_status(run_dir, str(run_dir) == active_dir or folder_held(run_dir)),
                    "architecture": config.get("architecture"),
                    "data": config.get("data"),
                    "epochs": f"{len(epochs)}/{config.get('epochs')}",
                    "best_val_accuracy": round(best["val_accuracy"], 4) if best else None,
                    "best_val_macro_f1": round(best["val_macro_f1"], 4) if best else None,
                    "best_epoch": best["epoch"] if best else None,
                    "model": final.get("model"),
                    "error": final.get("error", ""),
                }
            )
        return rows

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a run's log."""
        path = self.root / name / LOG_FILE
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

"""`python -m fer_core runs`: the Train page's runs section as a command.

Lists the training runs in a runs folder, shows one run's progress and learning curve, and asks
a running one to stop. Runs trained in another shell (`python -m fer_core train`) show as
running too. Imports no TensorFlow, so it answers at once while a run trains.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fer_core.classes import EMOTIONS
from fer_core.cli.text import number, percent, print_table
from fer_core.train.events import current_batch, duration_text, epoch_history, read_events
from fer_core.train.jobs import JobManager


def add_runs_parser(sub) -> None:
    p = sub.add_parser(
        "runs", help="list training runs, show one run's progress and learning curve, or stop a running one"
    )
    p.add_argument("name", nargs="?", help="a run (its folder's name): show its progress and learning curve")
    p.add_argument("--runs-dir", type=Path, help="the folder holding the run folders (default $FER_RUNS_DIR or runs/)")
    p.add_argument("--stop", action="store_true", help="ask the run NAME to stop after its current batch")
    p.add_argument("--log", type=int, default=0, metavar="N", help="also print the last N lines of the run's log")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=cmd_runs)


def cmd_runs(args) -> int:
    from fer_core.paths import runs_dir

    root = args.runs_dir or runs_dir()
    if not root.is_dir():
        return _fail(f"no runs folder at {root}")
    manager = JobManager(root)
    runs = manager.runs()
    if args.name is None:
        if args.stop:
            return _fail("--stop needs the name of the run to stop")
        _print_runs(runs, root, args.json)
        return 0
    row = next((r for r in runs if r["name"] == args.name), None)
    if row is None:
        known = ", ".join(r["name"] for r in runs) or "none"
        return _fail(f"no run named {args.name!r} in {root} (runs there: {known})")
    if args.stop:
        if not manager.stop(args.name):
            return _fail(f"run {args.name!r} is not running ({row['status']}); nothing to stop")
        print(
            f"Asked {args.name} to stop after its current batch; its best checkpoint is kept (and registered, if "
            "the run names a model)."
        )
        return 0
    events = read_events(root / args.name)
    history = epoch_history(events)
    progress = current_batch(events) if row["status"] == "running" else None
    if args.json:
        print(json.dumps({"run": row, "progress": progress, "epochs": history}, indent=2))
    else:
        _print_run(row, history, progress, events, root / args.name)
    if args.log:
        print(manager.log_tail(args.name, args.log) or "(the run has no log: it was started from a shell)")
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _print_runs(runs: list[dict], root: Path, as_json: bool) -> None:
    if as_json:
        print(json.dumps(runs, indent=2))
        return
    if not runs:
        print(f"No runs in {root}.")
        return
    print(f"Runs in {root}, newest first:")
    table = [["run", "status", "architecture", "epochs", "best val acc", "val F1", "model"]]
    for r in runs:
        best = f"{percent(r['best_val_accuracy'])} (ep {r['best_epoch']})" if r["best_epoch"] else "-"
        f1 = "-" if r["best_val_macro_f1"] is None else f"{r['best_val_macro_f1']:.3f}"
        table.append([r["name"], r["status"], str(r["architecture"]), r["epochs"], best, f1, r["model"] or "-"])
    print_table(table)
    for r in runs:
        if r["error"]:
            print(f"{r['name']} failed: {r['error']}")


def _print_run(row: dict, history: list[dict], progress: dict | None, events: list[dict], run_dir: Path) -> None:
    print(f"{row['name']}: {row['status']} · {row['architecture']} · {row['epochs']} epochs · data {row['data']}")
    command = next((e["config"].get("command") for e in events if e["type"] == "started"), None)
    if command:
        print(f"command: {command}")
    if progress:
        print(
            f"epoch {progress['epoch']}: batch {progress['batch']}/{progress['batches']}, "
            f"{progress['images_per_s']:.0f} images/s; the run's ETA {duration_text(progress['eta_s'])}"
        )
    if history:
        print_curve(history)
    else:
        print("no epoch finished yet")
    if row["model"]:
        print(f"registered as model {row['model']}")
    elif row["status"] in ("finished", "stopped"):
        print("no model registered (the run named none: train --register-as); its checkpoints stay in the run folder")
    if row["error"]:
        print(f"failed: {row['error']}")
    if row["status"] in ("interrupted", "stopped", "failed"):
        print(f"resume from its last checkpoint: python -m fer_core train --resume {run_dir}")


def print_curve(history: list[dict]) -> None:
    """A learning curve (`fer_core.train.events.epoch_history` entries) as a table, then its best epoch."""
    table = [["epoch", "loss", "val loss", "val acc", "val F1", "lr", "seconds"]]
    for h in history:
        table.append(
            [
                str(h["epoch"]),
                number(h.get("loss"), 4),
                number(h.get("val_loss"), 4),
                percent(h.get("val_accuracy")),
                number(h.get("val_macro_f1"), 3),
                number(h.get("lr"), 5),
                number(h.get("seconds"), 0),
            ]
        )
    print_table(table)
    best = max(history, key=lambda h: h["val_accuracy"])
    recall = best.get("per_class_recall", {})
    print(
        f"best: epoch {best['epoch']}, validation {percent(best['val_accuracy'])} / "
        f"{best['val_macro_f1']:.3f}; recall " + ", ".join(f"{c} {percent(recall[c])}" for c in EMOTIONS if c in recall)
    )

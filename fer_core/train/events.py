"""Progress events of a training run: JSON lines in `<run>/events.jsonl`.

This module imports no TensorFlow, so pages can read runs cheaply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

EVENTS_FILE = "events.jsonl"

Reporter = Callable[[dict], None]
"""Receives each event as a run writes it (the CLI prints them); see `TrainingRun`'s `report`."""


def append_event(run_dir: Path, kind: str, report: Reporter | None = None, **fields) -> dict:
    """Append one event (with a `time` stamp) to the run's event file, pass it to `report`, return it."""
    event = {"type": kind, "time": time.time(), **fields}
    with (run_dir / EVENTS_FILE).open("a") as f:
        f.write(json.dumps(event) + "\n")
    if report is not None:
        report(event)
    return event


def read_events(run_dir: Path) -> list[dict]:
    """All events of a run, skipping a half-written last line."""
    path = run_dir / EVENTS_FILE
    if not path.is_file():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


# What a model card keeps of each epoch (the confusion matrices stay in the run folder).
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "val_accuracy", "val_macro_f1", "lr", "seconds")


def finished_epochs(events: list[dict]) -> list[dict]:
    """A run's epoch events, one per finished epoch, in order.

    An epoch counted twice (a run resumed from an older checkpoint) keeps its later event.
    """
    by_epoch = {int(e["epoch"]): e for e in events if e.get("type") == "epoch"}
    return [by_epoch[k] for k in sorted(by_epoch)]


def epoch_history(events: list[dict]) -> list[dict]:
    """The learning curve of a run: one entry per finished epoch, in order, numbers rounded."""
    history = []
    for event in finished_epochs(events):
        entry = {k: _rounded(event[k]) for k in HISTORY_FIELDS if k in event}
        if "per_class_recall" in event:
            entry["per_class_recall"] = {c: _rounded(r) for c, r in event["per_class_recall"].items()}
        history.append(entry)
    return history


def current_batch(events: list[dict]) -> dict | None:
    """The latest batch event of the epoch in progress (batch, batches, images/s, the run's ETA),
    or None when the run's latest event is not a batch (an epoch just ended, or the run did)."""
    last = events[-1] if events else {}
    return last if last.get("type") == "batch" else None


def _rounded(value):
    return round(value, 5) if isinstance(value, float) else value


def duration_text(seconds: float) -> str:
    """A duration as people read an ETA: "40 s", "12.5 min", "8.7 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def event_line(event: dict) -> str | None:
    """One line for a person watching a run in a terminal, or None for events not worth a line
    (batches; the end, which the command prints itself)."""
    kind = event.get("type")
    if kind in ("started", "resumed"):
        cfg = event.get("config", {})
        per_epoch = f"{event.get('steps_per_epoch', '?')} batches of {cfg.get('batch_size', '?')} per epoch"
        if kind == "resumed":
            return f"resuming at epoch {event.get('start_epoch', 0) + 1} of {cfg.get('epochs', '?')} ({per_epoch})"
        train, val = sum(event.get("train_counts", {}).values()), sum(event.get("val_counts", {}).values())
        return (
            f"training {cfg.get('architecture', '?')} for {cfg.get('epochs', '?')} epochs on {train:,} faces "
            f"({val:,} held out for validation), {per_epoch}, {event.get('policy', '?')}"
        )
    if kind == "epoch":
        best = " (best so far)" if event.get("best") else f" (best: epoch {event.get('best_epoch', '?')})"
        eta = f"; ETA {duration_text(event['eta_s'])}" if event.get("eta_s") else ""
        return (
            f"epoch {event['epoch']}/{event.get('epochs', '?')}: loss {event.get('loss', float('nan')):.4f}, "
            f"validation {event.get('val_accuracy', 0):.1%} / macro-F1 {event.get('val_macro_f1', 0):.3f}{best}, "
            f"lr {event.get('lr', 0):.5f}, {duration_text(event.get('seconds', 0))}{eta}"
        )
    notes = {
        "stopping": "stop asked: ending after this batch; the best checkpoint is kept",
        "exporting": "exporting the best checkpoint to the app's model format (LiteRT)",
        "evaluating": "measuring the new model: calibration, TTA modes, validation and test metrics",
    }
    if kind in notes:
        return notes[kind]
    if kind == "labelling":
        added, before = event.get("faces", 0), event.get("borrowed", 0)
        return f"teachers labelling {added:,} added faces ({before:,} labelled before)"
    if kind == "failed":
        return f"failed: {event.get('error', '?')}"
    return None

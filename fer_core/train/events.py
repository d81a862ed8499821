"""Progress events of a training run: JSON lines in `<run>/events.jsonl`.

This module imports no TensorFlow, so pages can read runs cheaply.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

EVENTS_FILE = "events.jsonl"


def append_event(run_dir: Path, kind: str, **fields) -> dict:
    """Append one event (with a `time` stamp) to the run's event file and return it."""
    event = {"type": kind, "time": time.time(), **fields}
    with (run_dir / EVENTS_FILE).open("a") as f:
        f.write(json.dumps(event) + "\n")
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

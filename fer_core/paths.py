"""Where the app keeps its working data (datasets, runs); configurable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """`$FER_DATA_DIR`, else `data/` in the repository (ignored by git)."""
    return Path(os.environ.get("FER_DATA_DIR") or REPO_ROOT / "data")


def corrections_dir() -> Path:
    """Folder of corrections datasets saved from the Batch page."""
    return data_dir() / "corrections"


def runs_dir() -> Path:
    """`$FER_RUNS_DIR`, else `runs/` in the repository: one folder per training run."""
    return Path(os.environ.get("FER_RUNS_DIR") or REPO_ROOT / "runs")

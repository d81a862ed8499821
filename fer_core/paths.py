"""Where the app keeps its working data (datasets, runs): see fer_core.settings for the variables."""

from __future__ import annotations

from pathlib import Path

from fer_core.settings import REPO_ROOT, Environment

__all__ = ["REPO_ROOT", "corrections_dir", "data_dir", "runs_dir"]


def data_dir() -> Path:
    """`$FER_DATA_DIR`, else `data/` in the repository (ignored by git)."""
    return Environment.read().data_dir


def corrections_dir() -> Path:
    """Folder of corrections datasets saved from the Batch page."""
    return data_dir() / "corrections"


def runs_dir() -> Path:
    """`$FER_RUNS_DIR`, else `runs/` in the repository: one folder per training run."""
    return Environment.read().runs_dir

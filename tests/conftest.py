"""Shared fixtures: a tiny really-trained model in a temporary registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import fer_ui  # noqa: E402,F401  (libsrtp must load before TensorFlow; see fer_ui/__init__.py)
from tests.helpers import SHARED, write_class_folders  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY_RUNS = "tiny-runs"


@pytest.fixture(scope="session")
def pattern_dataset(tmp_path_factory) -> Path:
    """Class folders of learnable synthetic 48x48 images (30 per class)."""
    return write_class_folders(tmp_path_factory.mktemp("patterns"), per_class=30)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory, pattern_dataset) -> Path:
    """A registry holding "tiny-test": the tiny architecture really trained for a few epochs."""
    from fer_core.registry import set_active_model
    from fer_core.train.config import TrainConfig
    from fer_core.train.run import run_training

    models = tmp_path_factory.mktemp("models")
    run_dir = tmp_path_factory.getbasetemp() / TINY_RUNS / "tiny"
    config = TrainConfig(
        data=str(pattern_dataset),
        architecture="tiny",
        epochs=6,
        batch_size=32,
        learning_rate=0.05,
        val_fraction=0.2,
        patience=0,
        register_as="tiny-test",
        models_dir=str(models),
        warmup_epochs=0,
        precision="float32",
    )
    final = run_training(run_dir, config)
    assert final["type"] == "finished" and final["model"] == "tiny-test"
    set_active_model("tiny-test", models)
    return models


@pytest.fixture
def tiny_runs(tiny_models_dir, tmp_path_factory, tmp_path) -> Path:
    """A private copy of the runs folder holding the finished run ("tiny") that made "tiny-test"."""
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(tmp_path_factory.getbasetemp() / TINY_RUNS, runs)
    return runs


@pytest.fixture
def use_models(tiny_models_dir, tmp_path, monkeypatch) -> Path:
    """Point the registry (FER_MODELS_DIR) at a private copy of the tiny test registry.

    A copy per test, so models a test registers or activates never leak into another test.
    """
    import shutil

    models = tmp_path / "registry"
    shutil.copytree(tiny_models_dir, models)
    monkeypatch.setenv("FER_MODELS_DIR", str(models))
    return models


@pytest.fixture
def shared_fer() -> Path:
    """The FER-2013 folders in ../shared, or skip."""
    if not SHARED.is_dir():
        pytest.skip(f"FER-2013 not present at {SHARED}")
    return SHARED

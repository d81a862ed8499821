"""Ensembles: a card of members whose logits are averaged, used wherever a model is."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fer_core.classifier import EmotionClassifier
from fer_core.cli import main
from fer_core.ensemble import EnsembleClassifier, create_ensemble, fit_weights
from fer_core.registry import ModelError, get_model
from fer_core.train.config import TrainConfig
from fer_core.train.run import run_training


@pytest.fixture(scope="module")
def two_members(tiny_models_dir, pattern_dataset, tmp_path_factory):
    """The tiny test registry plus a second, differently trained member on the same split."""
    models = tmp_path_factory.mktemp("ensemble-models")
    shutil.copytree(tiny_models_dir, models, dirs_exist_ok=True)
    base = get_model("tiny-test", models).card["training"]["config"]
    config = TrainConfig.from_dict(
        {**base, "epochs": 3, "learning_rate": 0.02, "register_as": "tiny-other", "models_dir": str(models)}
    )
    final = run_training(tmp_path_factory.mktemp("runs") / "other", config)
    assert final["model"] == "tiny-other"
    return models


@pytest.fixture
def registry(two_members, tmp_path, monkeypatch):
    models = tmp_path / "registry"
    shutil.copytree(two_members, models)
    monkeypatch.setenv("FER_MODELS_DIR", str(models))
    return models


def test_ensemble_card_loads_and_averages_member_logits(registry, pattern_dataset):
    info = create_ensemble("tiny-pair", ["tiny-test", "tiny-other"], test_data=pattern_dataset)
    assert info.is_ensemble and [m["name"] for m in info.card["members"]] == ["tiny-test", "tiny-other"]
    assert set(info.card["tta"]) == {"none", "flip", "crops"} and "test" in info.card["metrics"]
    assert not (info.folder / "model.tflite").exists()  # members keep their own files
    ensemble = EmotionClassifier.from_registry("tiny-pair")
    assert isinstance(ensemble, EnsembleClassifier)
    crops = np.random.default_rng(0).integers(0, 255, (5, 48, 48), dtype=np.uint8)
    a = EmotionClassifier.from_registry("tiny-test").logits(crops)
    b = EmotionClassifier.from_registry("tiny-other").logits(crops)
    np.testing.assert_allclose(ensemble.logits(crops), (a + b) / 2, rtol=1e-5, atol=1e-5)
    assert ensemble.predict_proba(crops).sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)


def test_ensemble_evaluates_through_the_cli_like_a_model(registry, pattern_dataset, capsys):
    assert main(["ensemble", "tiny-pair", "--members", "tiny-test", "tiny-other", "--fit-weights"]) == 0
    assert "registered ensemble tiny-pair" in capsys.readouterr().out
    weights = [m["weight"] for m in get_model("tiny-pair").card["members"]]
    assert sum(weights) == pytest.approx(1.0, abs=1e-3) and min(weights) >= 0
    assert main(["evaluate", "--data", str(pattern_dataset), "--model", "tiny-pair", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model"] == "tiny-pair" and metrics["n"] > 0
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tiny-pair"]["ok"], rows["tiny-pair"]


def test_missing_member_gives_a_clear_error(registry, capsys):
    create_ensemble("tiny-pair", ["tiny-test", "tiny-other"])
    shutil.rmtree(registry / "tiny-other")
    with pytest.raises(ModelError, match="member 'tiny-other' is not usable"):
        EmotionClassifier.from_registry("tiny-pair")
    assert main(["evaluate", "--data", str(registry), "--model", "tiny-pair"]) == 2
    assert "member 'tiny-other' is not usable" in capsys.readouterr().err
    with pytest.raises(ModelError, match="at least two different members"):
        create_ensemble("solo", ["tiny-test", "tiny-test"])


def test_fitted_weights_favour_the_better_member():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 400)
    good = np.eye(7)[labels] * 4 + rng.normal(0, 1, (400, 7))
    noise = rng.normal(0, 1, (400, 7))
    weights = fit_weights([noise, good], labels)
    assert weights[1] > 0.8 and sum(weights) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.slow
def test_tiny_distillation_run_lowers_its_loss_and_registers(registry, tmp_path, capsys):
    from fer_core.train.events import read_events

    create_ensemble("tiny-pair", ["tiny-test", "tiny-other"])
    base = get_model("tiny-test").card["training"]["config"]
    run_dir = tmp_path / "student"
    args = ["train", "--data", base["data"], "--architecture", "tiny", "--epochs", "4", "--batch-size", "32"]
    args += ["--learning-rate", "0.05", "--val-fraction", "0.2", "--warmup-epochs", "0", "--precision", "float32"]
    args += ["--teacher", "tiny-pair", "--teacher-tta", "none", "--distill-temperature", "3"]
    args += ["--register-as", "tiny-student", "--run-dir", str(run_dir)]
    assert main(args) == 0, capsys.readouterr().err
    losses = [e["loss"] for e in read_events(run_dir) if e["type"] == "epoch"]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    soft = np.load(run_dir / "teacher_targets.npy")
    assert soft.shape[1] == 7 and np.allclose(soft.sum(axis=1), 1.0, atol=1e-4)
    card = get_model("tiny-student").card
    assert card["training"]["config"]["teacher"] == "tiny-pair" and "validation" in card["metrics"]
    # A teacher that does not exist stops the run before any training, with its name.
    assert main([*args[:-4], "--teacher", "ghost", "--run-dir", str(tmp_path / "ghost")]) != 0
    assert "ghost" in capsys.readouterr().err

"""Model registry: cards, hashes, active model, clear errors for broken models."""

from __future__ import annotations

import json
import shutil

import pytest

from fer_core.classifier import EmotionClassifier
from fer_core.registry import ModelError, active_model_name, get_model, list_models, set_active_model


def _copy(models, tmp_path):
    dst = tmp_path / "models"
    shutil.copytree(models, dst)
    return dst


def test_card_contents(tiny_models_dir):
    info = get_model("tiny-test", tiny_models_dir)
    card = info.card
    for key in ("classes", "input_size", "preprocessing", "training", "metrics", "created", "files", "calibration"):
        assert key in card
    assert set(card["files"]) == {"model.tflite", "model.keras"}
    assert info.verify().name == "model.tflite"


def test_missing_and_corrupt_models_name_the_file(tiny_models_dir, tmp_path):
    models = _copy(tiny_models_dir, tmp_path)
    with pytest.raises(ModelError, match="no such model"):
        get_model("nope", models)
    tflite = models / "tiny-test" / "model.tflite"
    tflite.write_bytes(tflite.read_bytes()[:100])
    with pytest.raises(ModelError, match="model.tflite: sha256"):
        EmotionClassifier.from_registry(get_model("tiny-test", models))
    row = list_models(models)[0]
    assert row["ok"] is False and "sha256" in row["error"]
    (models / "tiny-test" / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="card.json: model card is not valid JSON"):
        get_model("tiny-test", models)


def test_garbage_weights_with_matching_hash_still_fail_cleanly(tiny_models_dir, tmp_path):
    models = _copy(tiny_models_dir, tmp_path)
    folder = models / "tiny-test"
    (folder / "model.tflite").write_bytes(b"garbage" * 100)
    from fer_core.registry import read_card, write_card

    write_card(folder, read_card(folder))
    with pytest.raises(ModelError, match="not a loadable TFLite model"):
        EmotionClassifier.from_registry(get_model("tiny-test", models))


def test_no_model_installed_says_so(tmp_path):
    with pytest.raises(ModelError, match="No trained model is installed"):
        get_model(None, tmp_path)


def test_active_model_switch(tiny_models_dir, tmp_path):
    models = _copy(tiny_models_dir, tmp_path)
    shutil.copytree(models / "tiny-test", models / "second")
    card = json.loads((models / "second" / "card.json").read_text())
    card["name"] = "second"
    (models / "second" / "card.json").write_text(json.dumps(card))
    assert active_model_name(models) == "tiny-test"
    set_active_model("second", models)
    assert active_model_name(models) == "second"
    assert {r["name"]: r["active"] for r in list_models(models)} == {"second": True, "tiny-test": False}
    with pytest.raises(ModelError):
        set_active_model("ghost", models)

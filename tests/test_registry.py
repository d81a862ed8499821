"""Model registry: cards, hashes, active model, clear errors for broken models."""

from __future__ import annotations

import json
import shutil

import pytest

from fer_core.models import load_classifier
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
        load_classifier(get_model("tiny-test", models))
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
        load_classifier(get_model("tiny-test", models))


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


def test_a_temperature_belongs_to_one_tta_mode_and_can_be_undone(use_models):
    from fer_core.models import load_classifier
    from fer_core.registry import get_model, save_calibration, undo_calibration

    plain = get_model("tiny-test").temperature
    crops_before = get_model("tiny-test").temperature_for("crops")  # fitted at registration
    assert "crops" in get_model("tiny-test").card["calibration"]["by_tta"]
    save_calibration("tiny-test", {"temperature": 0.5, "fitted_on": "test"}, tta="crops")
    info = get_model("tiny-test")
    assert info.temperature_for("crops") == 0.5
    assert info.temperature == plain and info.temperature_for("none") == plain  # plain predictions unchanged
    assert load_classifier(info, tta="crops").temperature == 0.5
    assert load_classifier(info).temperature == plain
    save_calibration("tiny-test", {"temperature": 2.0, "fitted_on": "test"})
    assert get_model("tiny-test").temperature == 2.0 and get_model("tiny-test").temperature_for("crops") == 0.5
    assert undo_calibration("tiny-test") == "none"
    assert get_model("tiny-test").temperature == plain
    assert undo_calibration("tiny-test") == "crops"
    assert get_model("tiny-test").temperature_for("crops") == crops_before
    assert undo_calibration("tiny-test") is None


def test_calibration_needs_a_real_set_and_says_when_it_does_not_help():
    import numpy as np
    import pytest

    from fer_core.datasets import LabeledFaces
    from fer_core.evaluation import MIN_CALIBRATION_SET, calibration_report

    rng = np.random.default_rng(0)
    n = 600
    clean = rng.normal(0, 1.5, (n, 7))
    labels = np.array([rng.choice(7, p=np.exp(c) / np.exp(c).sum()) for c in clean])
    data = LabeledFaces(np.zeros((n, 48, 48), np.uint8), labels, [str(i) for i in range(n)])
    with pytest.raises(ValueError, match=f"at least {MIN_CALIBRATION_SET}"):
        calibration_report(data.subset(np.arange(50)), clean[:50])
    overconfident = calibration_report(data, clean * 3)  # fitting T near 3 clearly helps
    assert overconfident["improves"] and overconfident["ece_after"] < overconfident["ece_current"]
    already = calibration_report(data, clean * 3, current_temperature=overconfident["temperature"])
    assert not already["improves"]


def test_user_trained_models_stay_out_of_git_status():
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (repo / ".git").exists():
        import pytest

        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=repo).returncode == 0

    assert ignored("models/my-model-20261130-1200/card.json")
    assert not ignored("models/fer2013-compact-r2/card.json") and not ignored("models/active.txt")


def test_every_shipped_model_loads_and_classifies():
    """Each model in the repository's models/ passes its hash check and gives 7 logits per face;
    an ensemble's members are shipped beside it; each card carries its held-out figures."""
    from pathlib import Path

    import numpy as np

    from fer_core.registry import list_model_names

    shipped = Path(__file__).resolve().parents[1] / "models"
    names = list_model_names(shipped)
    assert active_model_name(shipped) in names
    for name in names:
        info = get_model(name, shipped)
        info.verify()
        if info.is_ensemble:
            assert {m.name for m, _ in info.members()} <= set(names)
        classifier = load_classifier(info)
        # 48 px gray for most, 64 for the larger-crop members, 112 px colour for the RAF-DB model
        crops = np.random.default_rng(0).integers(0, 256, (3, *classifier.crop_shape), dtype=np.uint8)
        logits = classifier.logits(crops)
        assert logits.shape == (3, 7) and np.isfinite(logits).all(), name
        assert {"validation", "test"} <= set(info.card["metrics"]), name

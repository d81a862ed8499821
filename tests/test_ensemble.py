"""Ensembles: a card of members whose logits are averaged, used wherever a model is."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from fer_core.cli import main
from fer_core.ensemble import create_ensemble, shared_validation
from fer_core.models import EnsembleClassifier, load_classifier
from fer_core.models.ensemble import fit_weights
from fer_core.preprocess import Preprocessing, preprocess_face, resize_crops
from fer_core.registry import ModelError, get_model
from fer_core.train.config import TrainConfig
from fer_core.train.run import run_training


@pytest.fixture(scope="module")
def two_members(tiny_models_dir, pattern_dataset, tmp_path_factory):
    """The tiny test registry plus a second member on the same split, from another run seed."""
    models = tmp_path_factory.mktemp("ensemble-models")
    shutil.copytree(tiny_models_dir, models, dirs_exist_ok=True)
    base = get_model("tiny-test", models).card["training"]["config"]
    other = {"epochs": 3, "run_seed": 7, "learning_rate": 0.02, "register_as": "tiny-other", "models_dir": str(models)}
    config = TrainConfig.from_dict({**base, **other})
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
    # an ensemble (a teacher, say) holds out what its members held out
    assert shared_validation([info]) == shared_validation([get_model("tiny-test")])
    ensemble = load_classifier("tiny-pair")
    assert isinstance(ensemble, EnsembleClassifier)
    crops = np.random.default_rng(0).integers(0, 255, (5, 48, 48), dtype=np.uint8)
    a = load_classifier("tiny-test").logits(crops)
    b = load_classifier("tiny-other").logits(crops)
    # each member calibrated before averaging: its logits divided by its own temperature
    ta, tb = (get_model(n).temperature for n in ("tiny-test", "tiny-other"))
    assert [m["temperature"] for m in info.card["members"]] == [round(ta, 4), round(tb, 4)]
    np.testing.assert_allclose(ensemble.logits(crops), (a / ta + b / tb) / 2, rtol=1e-3, atol=1e-3)
    assert ensemble.predict_proba(crops).sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    single = load_classifier("tiny-test").multiply_adds()
    assert single > 0 and ensemble.multiply_adds() == 2 * single  # two members of one architecture


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
    assert main(["models", "tiny-pair"]) == 0
    members = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("members"))
    assert f"tiny-test x{weights[0]:.2f} (" in members and f"tiny-other x{weights[1]:.2f} (" in members


def test_evaluate_compares_two_models_on_the_same_faces(registry, pattern_dataset, capsys):
    data = ["evaluate", "--data", str(pattern_dataset), "--json"]
    alone = {}
    for name in ("tiny-test", "tiny-other"):
        assert main([*data, "--model", name]) == 0
        alone[name] = json.loads(capsys.readouterr().out)
    assert main([*data, "--model", "tiny-test", "--compare", "tiny-other"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["accuracy"] == alone["tiny-test"]["accuracy"] and both["compare"]["model"] == "tiny-other"
    overall = {r["measure"]: r for r in both["compare"]["overall"]}
    b = alone["tiny-other"]
    assert overall["accuracy"]["B"] == pytest.approx(b["accuracy"], abs=1e-4)
    assert overall["macro_f1"]["Δ (B - A)"] == pytest.approx(b["macro_f1"] - both["macro_f1"], abs=2e-4)
    fear = next(r for r in both["compare"]["per_class"] if r["class"] == "fear")
    assert fear["recall B"] == pytest.approx(b["per_class"]["fear"]["recall"], abs=1e-4)
    assert main(["evaluate", "--data", str(pattern_dataset), "--model", "tiny-test", "--compare", "tiny-other"]) == 0
    out = capsys.readouterr().out
    assert "compared: A = tiny-test, B = tiny-other, on the same faces" in out
    assert next(line for line in out.splitlines() if line.startswith("accuracy ")).split()[1:3] == [
        f"{both['accuracy']:.4f}",
        f"{b['accuracy']:.4f}",
    ]
    assert main(["evaluate", "--data", str(pattern_dataset), "--compare", "ghost"]) == 2
    assert "no such model" in capsys.readouterr().err


def test_weights_fitted_on_flip_logits_are_those_of_the_members_under_flip(registry, capsys):
    from fer_core.datasets import validation_split

    args = ["ensemble", "tiny-flip", "--members", "tiny-test", "tiny-other", "--fit-weights", "--fit-tta", "flip"]
    assert main(args) == 0, capsys.readouterr().err
    card = get_model("tiny-flip").card
    assert card["training"]["weights"] == "fitted on the members' shared validation split (flip TTA logits)"
    member = get_model("tiny-test")
    split = member.card["training"]["config"]
    spec = member.preprocessing
    val = validation_split(split["data"], split["val_fraction"], split["seed"], spec, split["max_images"])
    # fitted on each member's flip logits divided by its own (plain) temperature
    names = ("tiny-test", "tiny-other")
    flipped = [load_classifier(n, tta="flip").logits(val.images) / get_model(n).temperature for n in names]
    assert [m["weight"] for m in card["members"]] == fit_weights(flipped, val.labels)
    assert main(["ensemble", "tiny-bad", "--members", "tiny-test", "tiny-other", "--fit-tta", "flip"]) == 2
    assert "needs the weights to be fitted (--fit-weights)" in capsys.readouterr().err


def test_missing_member_gives_a_clear_error(registry, capsys):
    create_ensemble("tiny-pair", ["tiny-test", "tiny-other"])
    shutil.rmtree(registry / "tiny-other")
    with pytest.raises(ModelError, match="member 'tiny-other' is not usable"):
        load_classifier("tiny-pair")
    assert main(["evaluate", "--data", str(registry), "--model", "tiny-pair"]) == 2
    assert "member 'tiny-other' is not usable" in capsys.readouterr().err
    with pytest.raises(ModelError, match="at least two different members"):
        create_ensemble("solo", ["tiny-test", "tiny-test"])


def test_members_of_different_crop_sizes_share_the_smallest_crop(registry, pattern_dataset, tmp_path, capsys):
    base = get_model("tiny-test").card["training"]["config"]
    wide = {"epochs": 2, "input_size": 64, "register_as": "tiny-64", "models_dir": str(registry)}
    assert run_training(tmp_path / "wide", TrainConfig.from_dict({**base, **wide}))["model"] == "tiny-64"
    assert get_model("tiny-64").preprocessing.size == 64
    args = ["ensemble", "tiny-mixed", "--members", "tiny-64", "tiny-test", "--fit-weights"]
    assert main([*args, "--test-data", str(pattern_dataset)]) == 0, capsys.readouterr().err
    info = get_model("tiny-mixed")
    assert info.preprocessing.size == 48 and info.card["input_size"] == 48 and "test" in info.card["metrics"]
    ensemble = load_classifier("tiny-mixed")
    assert ensemble.input_size == 48
    crops = np.random.default_rng(2).integers(0, 255, (4, 48, 48), dtype=np.uint8)
    wide_crops = np.stack([cv2.resize(c, (64, 64), interpolation=cv2.INTER_LINEAR) for c in crops])
    w = [m["weight"] / m["temperature"] for m in info.card["members"]]
    expected = w[0] * load_classifier("tiny-64").logits(wide_crops)
    expected += w[1] * load_classifier("tiny-test").logits(crops)
    total = sum(m["weight"] for m in info.card["members"])
    np.testing.assert_allclose(ensemble.logits(crops), expected / total, rtol=1e-4, atol=1e-4)
    # a 48 px source resized for the wide member is that source preprocessed at 64 px directly
    face = crops[0]
    direct = preprocess_face(face, None, Preprocessing(size=64))
    np.testing.assert_array_equal(resize_crops(crops[:1], 64)[0], direct)
    assert main(["evaluate", "--data", str(pattern_dataset), "--model", "tiny-mixed"]) == 0


def test_members_that_crop_faces_differently_each_get_their_own_crop(registry, capsys):
    """A member with another margin is not refused: the ensemble crops each face once per way."""
    from fer_core.preprocess import CompositePreprocessing
    from fer_core.types import Box

    shutil.copytree(registry / "tiny-other", registry / "tiny-wide-margin")
    card_path = registry / "tiny-wide-margin" / "card.json"
    card = json.loads(card_path.read_text())
    card["name"] = "tiny-wide-margin"
    card["preprocessing"]["margin"] = 0.3
    card_path.write_text(json.dumps(card))
    assert main(["ensemble", "tiny-odd", "--members", "tiny-test", "tiny-wide-margin"]) == 0, capsys.readouterr().err
    info = get_model("tiny-odd")
    assert isinstance(info.preprocessing, CompositePreprocessing) and len(info.preprocessing.parts) == 2
    photo = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    box = Box(50, 30, 50, 50)
    packed = preprocess_face(photo, box, info.preprocessing)[None]
    own = [preprocess_face(photo, box, get_model(n).preprocessing)[None] for n in ("tiny-test", "tiny-wide-margin")]
    expected = sum(
        m["weight"] * load_classifier(m["name"]).logits(c) / m["temperature"] for m, c in zip(info.card["members"], own)
    )
    np.testing.assert_allclose(load_classifier("tiny-odd").logits(packed), expected / 2, rtol=1e-4, atol=1e-4)


def test_fitted_weights_favour_the_better_member():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 400)
    good = np.eye(7)[labels] * 4 + rng.normal(0, 1, (400, 7))
    noise = rng.normal(0, 1, (400, 7))
    weights = fit_weights([noise, good], labels)
    assert weights[1] > 0.8 and sum(weights) == pytest.approx(1.0, abs=1e-3)


def _train_student(run_dir, epochs: int, capsys, *teaching: str) -> tuple[list[str], dict]:
    """Train a tiny student of the tiny pair (made here) as tiny-student; check its loss fell.

    Returns the `train` arguments and the student's card.
    """
    from fer_core.train.events import read_events

    create_ensemble("tiny-pair", ["tiny-test", "tiny-other"])
    base = get_model("tiny-test").card["training"]["config"]
    args = ["train", "--data", base["data"], "--architecture", "tiny", "--epochs", str(epochs), "--batch-size", "32"]
    args += ["--learning-rate", "0.05", "--val-fraction", "0.2", "--warmup-epochs", "0", "--precision", "float32"]
    args += ["--teacher", "tiny-pair", *teaching, "--register-as", "tiny-student", "--run-dir", str(run_dir)]
    assert main(args) == 0, capsys.readouterr().err
    losses = [e["loss"] for e in read_events(run_dir) if e["type"] == "epoch"]
    assert len(losses) == epochs and losses[-1] < losses[0], losses
    # The terminal follows the run: a line when it starts, one per epoch, the phases, the end.
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"training tiny for {epochs} epochs on ")
    assert [line.split(":")[0] for line in out if line.startswith("epoch ")] == [
        f"epoch {k}/{epochs}" for k in range(1, epochs + 1)
    ]
    assert out[-1] == f"finished: model=tiny-student epochs={epochs}" and "exporting the best checkpoint" in out[-3]
    card = get_model("tiny-student").card
    assert card["training"]["config"]["teacher"] == "tiny-pair" and "validation" in card["metrics"]
    return args, card


@pytest.mark.slow
def test_tiny_distillation_run_lowers_its_loss_and_registers(registry, tmp_path, capsys):
    run_dir = tmp_path / "student"
    args, _ = _train_student(run_dir, 4, capsys, "--teacher-tta", "none", "--distill-temperature", "3")
    logits = np.load(run_dir / "teacher_logits.npy")  # (teachers, faces, 7)
    assert logits.shape[0] == 1 and logits.shape[2] == 7 and np.isfinite(logits).all()
    # A teacher that does not exist stops the run before any training, with its name.
    assert main([*args[:-4], "--teacher", "ghost", "--run-dir", str(tmp_path / "ghost")]) != 0
    assert "ghost" in capsys.readouterr().err


def test_consistent_teacher_labels_each_batch_as_the_student_sees_it(registry, pattern_dataset):
    """Augmented, mixed batches carry the teacher's probabilities of those very images."""
    from fer_core.datasets import load_labeled
    from fer_core.metrics import softmax
    from fer_core.models import load_classifier
    from fer_core.train.config import Augmentation
    from fer_core.train.data import training_dataset

    teacher = load_classifier(get_model("tiny-test"))
    data = load_labeled(pattern_dataset)

    def judge(crops):
        return softmax(teacher.logits(crops), 2.0).astype(np.float32)

    ds = training_dataset(
        data.images, data.labels, np.ones(7, np.float32), 16, Augmentation(), 0.1, 0, mixup=0.2, teacher=judge
    )
    x, target, _ = next(iter(ds))
    assert target.shape == (16, 14)
    assert np.allclose(target[:, 7:], judge(x.numpy()[..., 0]), atol=1e-5)
    clean = judge(data.images[:16].astype(np.float32))
    assert not np.allclose(target[:, 7:], clean, atol=1e-3)  # not the clean faces' labels


@pytest.mark.slow
def test_consistent_distillation_run_registers(registry, tmp_path, capsys):
    run_dir = tmp_path / "student"
    args, card = _train_student(run_dir, 3, capsys, "--teacher-mode", "consistent", "--teacher-tta", "flip")
    assert not (run_dir / "teacher_logits.npy").exists()  # nothing precomputed: judged batch by batch
    assert card["training"]["config"]["teacher_mode"] == "consistent"
    bad = [a.replace("consistent", "sometimes").replace("tiny-student", "tiny-bad") for a in args[:-1]]
    assert main([*bad, str(tmp_path / "bad")]) != 0
    assert "teacher_mode" in capsys.readouterr().err


def test_ensembles_and_litert_only_models_are_refused_as_finetune_sources(registry, tmp_path, capsys):
    from fer_core.registry import finetune_problem

    create_ensemble("tiny-pair", ["tiny-test", "tiny-other"])
    lite = registry / "tiny-lite"
    shutil.copytree(registry / "tiny-test", lite)
    (lite / "model.keras").unlink()
    card = json.loads((lite / "card.json").read_text())
    card["name"] = "tiny-lite"
    (lite / "card.json").write_text(json.dumps(card))
    assert finetune_problem(get_model("tiny-test")) is None
    assert "ensemble" in finetune_problem(get_model("tiny-pair"))
    assert "LiteRT" in finetune_problem(get_model("tiny-lite"))
    load_classifier("tiny-lite")  # still a usable model for inference
    base = get_model("tiny-test").card["training"]["config"]
    args = ["train", "--data", base["data"], "--architecture", "tiny", "--epochs", "1"]
    for source, words in (("tiny-pair", "is an ensemble"), ("tiny-lite", "LiteRT file only"), ("ghost", "ghost")):
        run_dir = tmp_path / f"from-{source}"
        assert main([*args, "--finetune-from", source, "--run-dir", str(run_dir)]) != 0
        err = capsys.readouterr().err
        assert f"cannot fine-tune from {source!r}" in err and words in err, err
        assert not (run_dir / "checkpoints").exists() or not any((run_dir / "checkpoints").iterdir())


def test_train_page_offers_fine_tunable_sources_and_teachers(registry, pattern_dataset, tmp_path, monkeypatch):
    """The page lists only models that can be fine-tuned, checks the architecture, and starts a real
    distillation run from an ensemble teacher."""
    import time
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from fer_core.train.jobs import JobManager

    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "data"))
    create_ensemble("tiny-pair", ["tiny-test", "tiny-other"])
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    assert "tiny-pair" not in at.selectbox(key="t_ft").options
    assert any(o.startswith("tiny-test") for o in at.selectbox(key="t_ft").options)
    assert "tiny-pair" in at.selectbox(key="t_teacher").options
    at.text_input(key="train_path").set_value(str(pattern_dataset))
    at.selectbox(key="t_arch").set_value("compact")
    at.selectbox(key="t_ft").set_value("tiny-test")
    at.text_input(key="t_name").set_value("page-student")
    at.run()
    wanted = "'tiny-test' is 'tiny': fine-tuning needs the same architecture"
    assert any(wanted in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="t_start").disabled
    at.selectbox(key="t_arch").set_value("tiny")
    at.selectbox(key="t_teacher").set_value("tiny-pair")
    at.number_input(key="t_epochs").set_value(2)
    at.run()
    at.checkbox(key="t_teacher_consistent").check()
    at.checkbox(key="t_freeze_bn").check()
    # The rest of the recipe, from the Advanced settings (the default model's mixup and no early stop).
    at.number_input(key="t_mixup").set_value(0.2)
    at.number_input(key="t_patience").set_value(0)
    at.number_input(key="t_warmup").set_value(1)
    at.selectbox(key="t_monitor").set_value("val_macro_f1")
    at.number_input(key="t_run_seed").set_value(7)
    at.text_input(key="t_test_data").set_value(str(pattern_dataset / "missing"))
    at.run()
    assert any("Test set not found" in e.value for e in at.error)
    assert at.button(key="t_start").disabled
    at.text_input(key="t_test_data").set_value(str(pattern_dataset))
    at.run()
    assert not at.error and not at.button(key="t_start").disabled
    at.button(key="t_start").click()
    at.run()
    assert not at.exception, at.exception
    manager = JobManager(tmp_path / "runs")
    run_dir = manager.root / manager.runs()[0]["name"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["teacher"] == "tiny-pair" and config["teacher_mode"] == "consistent"
    assert config["finetune_from"] == "tiny-test" and config["freeze_bn"] is True
    assert (config["mixup"], config["patience"], config["warmup_epochs"]) == (0.2, 0, 1)
    assert config["monitor"] == "val_macro_f1" and config["test_data"] == str(pattern_dataset)
    assert config["run_seed"] == 7 and config["seed"] == TrainConfig(data="").seed  # same validation split
    deadline = time.time() + 180
    while manager.active() is not None and time.time() < deadline:
        time.sleep(0.5)
    assert manager.active() is None, "the run did not finish"
    assert not (run_dir / "teacher_logits.npy").exists()  # judged batch by batch
    card = get_model("page-student").card
    assert card["training"]["config"]["teacher"] == "tiny-pair"
    assert card["metrics"]["test"]["n"] > 0  # the page's test set, measured once at the end


def test_cards_score_sets_on_every_core_and_time_costs_on_one(registry, pattern_dataset, monkeypatch):
    from fer_core.datasets import load_labeled
    from fer_core.evaluation import card_measurements
    from fer_core.train.registration import litert_loader

    info = get_model("tiny-test")
    data = load_labeled(pattern_dataset, spec=info.preprocessing)
    load = litert_loader(info.verify(), info.preprocessing)
    built = []

    def build(tta, temperature, threads):
        built.append((tta, threads))
        return load(tta, temperature, threads)

    monkeypatch.setattr("os.cpu_count", lambda: 3)
    found = card_measurements(build, data, data)
    one_thread = card_measurements(lambda tta, temperature, threads: load(tta, temperature, 1), data, data)

    assert {threads for _, threads in built} == {1, 3}
    assert sorted(tta for tta, threads in built if threads == 1) == ["crops", "flip", "none"]  # each mode timed once
    assert found["metrics"]["test"]["accuracy"] == one_thread["metrics"]["test"]["accuracy"]
    assert found["tta"]["flip"]["test"] == one_thread["tta"]["flip"]["test"]
    assert all(found["tta"][mode]["ms_per_face_batch64"] > 0 for mode in ("none", "flip", "crops"))

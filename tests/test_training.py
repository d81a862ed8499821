"""Real (tiny) training runs: events, artifacts, registration, stop, resume, bad checkpoints."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fer_core.train.events import read_events

REPO = Path(__file__).resolve().parents[1]


def test_tiny_run_events_and_artifacts(tiny_models_dir):
    from fer_core.registry import get_model

    info = get_model("tiny-test", tiny_models_dir)
    run_dir = Path(info.card["training"]["run_dir"])
    events = read_events(run_dir)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    epochs = [e for e in events if e["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == list(range(1, 7))
    assert epochs[-1]["loss"] < epochs[0]["loss"]  # the loss falls
    assert epochs[-1]["eta_s"] == 0 and epochs[-2]["eta_s"] > 0  # nothing left after the last epoch
    for key in ("val_accuracy", "val_macro_f1", "per_class_recall", "confusion_matrix", "eta_s", "lr", "time"):
        assert key in epochs[-1]
    assert any(e["type"] == "batch" for e in events)
    assert (run_dir / "checkpoints" / "best.keras").is_file()
    assert (run_dir / "config.json").is_file()
    assert info.card["metrics"]["validation"]["accuracy"] > 0.5
    assert info.card["training"]["epochs_run"] == 6
    # The learning curve stays with the model when the run folder is gone, without the confusion matrices.
    history = info.card["training"]["history"]
    assert [e["epoch"] for e in history] == list(range(1, 7))
    assert history[-1]["val_accuracy"] == pytest.approx(epochs[-1]["val_accuracy"], abs=1e-5)
    assert set(history[0]["per_class_recall"]) == set(epochs[0]["per_class_recall"])
    assert "confusion_matrix" not in history[0] and history[0]["seconds"] > 0
    # Exported with int8 weights and checked against the float model on validation; this tiny model's
    # near-tied logits on a 42-face split may stray, and then it is float16, saying why.
    quantization = info.card["quantization"]
    if info.card["tflite_weights"] == "dynamic":
        assert quantization["agreement_with_float"] >= 0.98
    else:
        assert info.card["tflite_weights"] == "float16" and "float16 weights instead" in quantization["note"]
    assert {m: info.card["tta"][m]["views"] for m in ("none", "flip", "crops")} == {"none": 1, "flip": 2, "crops": 10}
    assert all(info.card["tta"][m]["ms_per_face_batch64"] > 0 for m in ("none", "flip", "crops"))
    # The learnable patterns are learnt, whichever way the faces are viewed.
    assert info.card["tta"]["crops"]["validation"]["accuracy"] > 0.5
    assert info.card["calibration"]["by_tta"]["crops"]["temperature"] > 0


def _train_cmd(data: Path, run_dir: Path, models: Path, epochs: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fer_core",
        "train",
        "--data",
        str(data),
        "--architecture",
        "tiny",
        "--epochs",
        str(epochs),
        "--batch-size",
        "8",
        "--run-dir",
        str(run_dir),
        "--register-as",
        "resumed",
        "--models-dir",
        str(models),
        "--precision",
        "float32",
        "--patience",
        "0",
    ]


def _wait_for_epoch(run_dir: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(e["type"] == "epoch" for e in read_events(run_dir)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError("no epoch finished in time")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop_file", "sigterm", "sigkill"])
def test_stop_then_resume(pattern_dataset, tmp_path, how, capsys):
    from fer_core.cli import main

    run_dir, models = tmp_path / "run", tmp_path / "models"
    models.mkdir()
    proc = subprocess.Popen(
        _train_cmd(pattern_dataset, run_dir, models, 40),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_epoch(run_dir, proc)
    # While it trains, a second process on its folder is refused before touching anything there.
    new_run = ["train", "--data", str(pattern_dataset), "--architecture", "tiny", "--run-dir", str(run_dir)]
    config_before = (run_dir / "config.json").read_text()
    for second in (["train", "--resume", str(run_dir)], new_run):
        assert main(second) == 1
        assert f"is being trained by another process (pid {proc.pid})" in capsys.readouterr().err
    assert (run_dir / "config.json").read_text() == config_before
    assert not any(e["type"] == "failed" for e in read_events(run_dir))
    if how == "sigkill":  # a machine going away: no handler runs
        time.sleep(0.5)
        proc.kill()
        proc.communicate(timeout=60)
        state = json.loads((run_dir / "state.json").read_text())
        done = state["epoch"]
        assert 1 <= done < 40
        # The time it trained is kept although the process never got to say goodbye.
        assert state["wall_seconds"] >= sum(state["epoch_seconds"]) > 0
        # A kill during a checkpoint save may leave a partial file; the checkpoints stay whole.
        partial = run_dir / "checkpoints" / "last-partial.keras"
        partial.write_bytes(b"cut off")
    else:
        if how == "stop_file":
            (run_dir / "STOP").touch()
        else:
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        events = read_events(run_dir)
        assert events[-1]["type"] == "stopped"
        done = events[-1]["epochs_done"]
        assert 1 <= done < 40
        assert events[-1]["model"] == "resumed"  # stopping keeps (and registers) the best so far
        state = json.loads((run_dir / "state.json").read_text())
        assert state["epoch"] == done
    # The process is gone (even killed, the kernel freed its lock); a new run is not mixed into its folder.
    assert main(new_run) == 1
    assert f"already holds a run ({done} epochs done)" in capsys.readouterr().err
    # Resume: continues at the next epoch and finishes all 40.
    config = json.loads((run_dir / "config.json").read_text())
    config["epochs"] = done + 2
    (run_dir / "config.json").write_text(json.dumps(config))
    resumed = subprocess.run(
        [sys.executable, "-m", "fer_core", "train", "--resume", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr
    events = read_events(run_dir)
    assert [e["type"] for e in events].count("resumed") == 1
    later = [e["epoch"] for e in events if e["type"] == "epoch"]
    assert later[-2:] == [done + 1, done + 2]
    assert events[-1]["type"] == "finished"
    assert not list((run_dir / "checkpoints").glob("*partial*"))
    state = json.loads((run_dir / "state.json").read_text())
    assert len(state["epoch_seconds"]) == done + 2
    # Wall time covers both stretches of training.
    card = json.loads((models / "resumed" / "card.json").read_text())
    assert card["training"]["wall_seconds"] >= round(sum(state["epoch_seconds"]), 1) - 0.1


@pytest.mark.slow
def test_corrupted_checkpoint_gives_clear_error(pattern_dataset, tmp_path):
    from fer_core.train.config import TrainConfig
    from fer_core.train.run import TrainingError, TrainingRun

    run = TrainingRun(tmp_path / "run", TrainConfig(data=str(pattern_dataset), architecture="tiny", epochs=3))
    run.save_state({**run.load_state(), "epoch": 1})
    (run.checkpoint_dir / "last.keras").write_bytes(b"definitely not a keras archive")
    with pytest.raises(TrainingError, match=r"last\.keras: checkpoint cannot be loaded"):
        run.execute(resume=True)


def test_unusable_test_set_fails_before_training(pattern_dataset, tmp_path):
    """A test set is only measured at registration, so a bad one must fail before any epoch."""
    from fer_core.train.config import TrainConfig
    from fer_core.train.run import TrainingError, TrainingRun, run_training

    empty = tmp_path / "empty-set"
    (empty / "happy").mkdir(parents=True)
    for test_data, message in ((tmp_path / "gone", "Dataset folder not found"), (empty, "No images in class folders")):
        cfg = TrainConfig(data=str(pattern_dataset), architecture="tiny", epochs=1, test_data=str(test_data))
        run = TrainingRun(tmp_path / f"run-{test_data.name}", cfg)
        with pytest.raises(TrainingError, match=message):
            run.execute()
        assert run.load_state()["epoch"] == 0
        assert not run.checkpoint_dir.exists() or not any(run.checkpoint_dir.iterdir())
    # A run that failed before its first epoch starts again in its folder with corrected settings.
    fixed = TrainConfig(data=str(pattern_dataset), architecture="tiny", epochs=1, test_data=str(pattern_dataset))
    final = run_training(tmp_path / "run-gone", fixed)
    assert final["type"] == "finished" and final["epochs_done"] == 1
    assert json.loads((tmp_path / "run-gone" / "config.json").read_text())["test_data"] == str(pattern_dataset)


@pytest.mark.slow
def test_finetune_from_registered_model(use_models, pattern_dataset, tmp_path):
    from fer_core.registry import get_model
    from fer_core.train.config import TrainConfig
    from fer_core.train.run import run_training

    cfg = TrainConfig(
        data=str(pattern_dataset),
        architecture="tiny",
        epochs=1,
        finetune_from="tiny-test",
        register_as="tuned",
        models_dir=str(use_models),
        precision="float32",
        learning_rate=0.001,
    )
    final = run_training(tmp_path / "ft", cfg)
    assert final["model"] == "tuned"
    tuned = get_model("tuned", use_models)
    # Starting from a trained model with a tiny learning rate keeps it accurate after one epoch.
    assert tuned.card["metrics"]["validation"]["accuracy"] > 0.5
    # With --freeze-bn the batch-normalisation layers keep the source's statistics and scales
    # (the last checkpoint is read back, as a resumed run would); the convolutions still learn.
    import keras

    frozen = TrainConfig(**{**cfg.__dict__, "register_as": None, "freeze_bn": True, "learning_rate": 0.01})
    run_training(tmp_path / "frozen", frozen)
    source = keras.saving.load_model(get_model("tiny-test", use_models).folder / "model.keras", compile=False)
    after = keras.saving.load_model(tmp_path / "frozen" / "checkpoints" / "last.keras", compile=False)
    kinds = {type(layer).__name__ for layer in source.layers}
    assert "BatchNormalization" in kinds
    for a, b in zip(source.layers, after.layers):
        same = all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
        if isinstance(a, keras.layers.BatchNormalization):
            assert same and not b.trainable, a.name
        elif isinstance(a, keras.layers.Conv2D):
            assert not same, a.name
    bad = TrainConfig(
        data=str(pattern_dataset),
        architecture="compact",
        epochs=1,
        finetune_from="tiny-test",
        models_dir=str(use_models),
    )
    from fer_core.train.run import TrainingError

    with pytest.raises(TrainingError, match="same architecture"):
        run_training(tmp_path / "bad", bad)


def test_quantize_exports_again_and_measures_again(use_models, capsys):
    from fer_core.cli import main
    from fer_core.models import LiteRTClassifier
    from fer_core.registry import get_model

    before = get_model("tiny-test")
    assert main(["quantize", "tiny-test", "--weights", "float32"]) == 0
    assert "exported with float32 weights" in capsys.readouterr().out
    info = get_model("tiny-test")
    assert info.card["tflite_weights"] == "float32" and info.card["quantization"]["weights"] == "float32"
    assert info.card["files"]["model.tflite"] != before.card["files"]["model.tflite"]
    assert info.card["files"]["model.keras"] == before.card["files"]["model.keras"]
    assert info.card["training"] == before.card["training"]  # how it was trained stays on the card
    assert main(["quantize", "tiny-test", "--weights", "int8"]) == 0
    info = get_model("tiny-test")
    assert info.card["tflite_weights"] in ("int8", "float16")  # float16 only if int8 strayed (then noted)
    assert info.card["quantization"]["command"].startswith("python -m fer_core quantize tiny-test")
    assert info.card["metrics"]["validation"]["accuracy"] > 0.5
    assert info.card["tta"]["none"]["ms_per_face_batch64"] > 0
    logits = LiteRTClassifier(info.verify()).logits(np.zeros((3, 48, 48), np.uint8))
    assert logits.shape == (3, 7) and np.isfinite(logits).all()


def test_blend_registers_weights_between_two_models_and_measures_them(use_models, capsys):
    import keras

    from fer_core.cli import main
    from fer_core.models import LiteRTClassifier
    from fer_core.registry import get_model, write_card

    # A second fine-tune of the same network: tiny-test with every weight moved.
    shutil.copytree(use_models / "tiny-test", use_models / "tiny-moved")
    moved = keras.saving.load_model(use_models / "tiny-moved" / "model.keras")
    moved.set_weights([w * 1.5 if w.dtype.kind == "f" else w for w in moved.get_weights()])
    moved.save(use_models / "tiny-moved" / "model.keras")
    write_card(use_models / "tiny-moved", {**get_model("tiny-test").card, "name": "tiny-moved"})

    assert main(["blend", "tiny-mid", "--models", "tiny-test", "tiny-moved", "--share", "0.5"]) == 0
    assert "0.5 x tiny-test + 0.5 x tiny-moved" in capsys.readouterr().out
    info = get_model("tiny-mid")
    info.verify()
    assert info.card["training"]["blend"] == [{"name": "tiny-test", "share": 0.5}, {"name": "tiny-moved", "share": 0.5}]
    assert info.card["metrics"]["validation"]["n"] == get_model("tiny-test").card["metrics"]["validation"]["n"]
    weights = [
        keras.saving.load_model(use_models / n / "model.keras").get_weights()[0] for n in ("tiny-test", "tiny-mid")
    ]
    np.testing.assert_allclose(weights[1], weights[0] * 1.25, rtol=1e-5)
    assert LiteRTClassifier(info.verify()).logits(np.zeros((2, 48, 48), np.uint8)).shape == (2, 7)
    assert main(["models", "tiny-mid"]) == 0
    assert "weights blended from models trained on" in capsys.readouterr().out

    assert main(["blend", "tiny-x", "--models", "tiny-test", "tiny-moved", "--share", "1.5"]) == 2
    assert main(["blend", "tiny-test", "--models", "tiny-test", "tiny-moved", "--share", "0.5"]) == 2
    assert main(["blend", "tiny-mid", "--models", "tiny-test", "tiny-moved", "--share", "0.2"]) == 2  # name taken
    assert "between 0 and 1" in capsys.readouterr().err
    assert not (use_models / "tiny-x").exists() and get_model("tiny-mid").card["training"]["blend"][1]["share"] == 0.5


def test_quantize_refuses_what_it_cannot_export(use_models, capsys):
    from fer_core.cli import main

    assert main(["quantize", "no-such-model"]) == 2
    (use_models / "tiny-test" / "model.keras").unlink()
    assert main(["quantize", "tiny-test"]) == 2
    assert "ships without model.keras" in capsys.readouterr().err
    assert (use_models / "tiny-test" / "model.tflite").is_file()  # nothing lost


def test_export_falls_back_to_float16_when_quantizing_strays(use_models, tmp_path, monkeypatch):
    import keras

    from fer_core.train import export

    model = keras.saving.load_model(use_models / "tiny-test" / "model.keras")
    crops = np.random.default_rng(0).integers(0, 255, (40, 48, 48), dtype=np.uint8)
    with pytest.raises(ValueError, match="representative crops"):
        export.export_tflite(model, tmp_path / "m.tflite", "int8")
    monkeypatch.setattr(export, "MIN_AGREEMENT", 0.0)  # any export agrees well enough
    record = export.export_checked(model, tmp_path / "m.tflite", crops, "dynamic")
    assert record["tflite_weights"] == "dynamic" and 0 <= record["quantization"]["agreement_with_float"] <= 1
    monkeypatch.setattr(export, "MIN_AGREEMENT", 1.01)  # no export can agree this well
    record = export.export_checked(model, tmp_path / "m.tflite", crops, "dynamic")
    assert record["tflite_weights"] == "float16" and "float16 weights instead" in record["quantization"]["note"]


def test_eta_ignores_an_epoch_that_was_paused(tmp_path):
    from types import SimpleNamespace

    from fer_core.train.run import _RunCallback

    run = SimpleNamespace(run_dir=tmp_path, config=SimpleNamespace(epochs=32))
    # Epochs of about 700 s, two of them stretched by a laptop asleep (or a paused process).
    state = {"epoch": 5, "epoch_seconds": [714.0, 3927.0, 667.0, 669.0, 4234.0]}
    callback = _RunCallback(run, val=None, steps=400, state=state)
    eta = callback._eta(200)  # half way through epoch 6
    assert 26.5 * 667 <= eta <= 26.5 * 714  # 26.5 epochs of a typical length, not of the mean (2042 s)
    state["epoch"] = 31  # just finished epoch 31 of 32: one epoch left, and none after the last
    assert 667 <= callback._eta(0) <= 714
    state["epoch"] = 32
    assert callback._eta(0) == 0


def test_split_and_weights():
    from fer_core.datasets import stratified_split
    from fer_core.train.data import class_weights

    labels = np.repeat(np.arange(7), [100, 10, 100, 300, 100, 100, 50])
    train, val = stratified_split(labels, 0.1, seed=1)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(labels)
    assert np.array_equal(stratified_split(labels, 0.1, seed=1)[1], val)
    assert np.bincount(labels[val], minlength=7)[1] == 1
    w = class_weights(labels, "balanced")
    assert w[1] > w[3] and w[labels].mean() == pytest.approx(1.0)
    assert np.allclose(class_weights(labels, "none"), 1.0)
    with pytest.raises(ValueError, match="Received"):
        class_weights(labels, "bogus")


def test_resnet_fast_takes_resnet_weights_at_half_resolution(tmp_path):
    """resnet-fast is the resnet with a stride-2 stem: the same weights, every stage at half size, and
    a trained resnet (and only a resnet) can be fine-tuned into it."""
    from fer_core.registry import KERAS_FILE, ModelInfo, finetune_problem
    from fer_core.train.architectures import BUILDERS, build_model
    from fer_core.train.config import ARCHITECTURES, IMPORTED

    assert set(BUILDERS) | {IMPORTED} == set(ARCHITECTURES)  # an imported network is built from its source
    resnet, fast = build_model("resnet"), build_model("resnet-fast")
    assert [w.shape for w in resnet.get_weights()] == [w.shape for w in fast.get_weights()]
    fast.set_weights(resnet.get_weights())
    crops = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype(np.float32)
    assert fast(crops, training=False).shape == (2, 7)
    assert resnet.get_layer("gap").input.shape[1:3] == (6, 6)
    assert fast.get_layer("gap").input.shape[1:3] == (3, 3)
    (tmp_path / KERAS_FILE).write_bytes(b"")  # finetune_problem only asks whether the file is there
    for own, wanted in (("resnet", "resnet-fast"), ("resnet-fast", "resnet"), ("resnet", "resnet")):
        assert finetune_problem(ModelInfo("m", tmp_path, {"architecture": own}), wanted) is None
    problem = finetune_problem(ModelInfo("m", tmp_path, {"architecture": "compact"}), "resnet-fast")
    assert "'m' is 'compact': fine-tuning needs the same architecture" in problem


def test_run_seed_changes_the_start_not_the_validation_split(pattern_dataset, tmp_path):
    """The same settings start from the same weights; another run seed starts elsewhere but holds out
    the same faces, so the two can form an ensemble whose weights are fitted on that split."""
    from fer_core.train.config import TrainConfig
    from fer_core.train.run import TrainingRun

    def run(name: str, **settings) -> TrainingRun:
        return TrainingRun(tmp_path / name, TrainConfig(data=str(pattern_dataset), architecture="tiny", **settings))

    def start(r: TrainingRun) -> np.ndarray:
        return np.concatenate([w.ravel() for w in r._new_model().get_weights()])

    first, again, other = run("first"), run("again"), run("other", run_seed=7)
    assert np.array_equal(start(first), start(again))
    assert not np.allclose(start(first), start(other))
    assert np.array_equal(first.load_data()[1].images, other.load_data()[1].images)
    assert other.config.training_seed() == 7 and first.config.training_seed() == first.config.seed


def test_training_turns_onednn_on_unless_told_not_to():
    """The switch must be set before TensorFlow loads: importing `fer_core.train` sets it, and a
    value the user gave is kept."""
    import os

    probe = "import fer_core.train.run, os, tensorflow; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    for given, expected in ((None, "1"), ("0", "0")):
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        env["TF_CPP_MIN_LOG_LEVEL"] = "0"  # TensorFlow says at start-up whether the kernels are on
        if given is not None:
            env["TF_ENABLE_ONEDNN_OPTS"] = given
        done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
        assert ("oneDNN custom operations are on" in done.stderr) == (expected == "1")


def test_epoch_history_keeps_the_later_figures_of_an_epoch_counted_twice():
    from fer_core.train.events import current_batch, epoch_history, finished_epochs

    def epoch(n, acc):
        recall = dict.fromkeys(("angry", "happy"), 0.123456789)
        return {"type": "epoch", "epoch": n, "loss": 1.0, "val_accuracy": acc, "per_class_recall": recall}

    events = [{"type": "started"}, epoch(1, 0.3), epoch(2, 0.4), {"type": "batch", "epoch": 3}, epoch(2, 0.45)]
    history = epoch_history(events)
    assert [(e["epoch"], e["val_accuracy"]) for e in history] == [(1, 0.3), (2, 0.45)]
    assert history[0]["per_class_recall"]["happy"] == 0.12346
    assert epoch_history([]) == []
    assert [e["val_accuracy"] for e in finished_epochs(events)] == [0.3, 0.45]  # the runs table counts 2, not 3
    assert current_batch(events) is None  # an epoch ended last
    assert current_batch([*events, {"type": "batch", "epoch": 3, "batch": 5}])["batch"] == 5


def test_a_terminal_gets_one_line_per_started_run_epoch_and_phase():
    from fer_core.train.events import event_line

    epoch = {"type": "epoch", "epoch": 3, "epochs": 10, "loss": 1.23456, "val_accuracy": 0.6512}
    epoch.update(val_macro_f1=0.6, lr=0.001, seconds=400, eta_s=2800, best=False, best_epoch=2)
    assert event_line(epoch) == (
        "epoch 3/10: loss 1.2346, validation 65.1% / macro-F1 0.600 (best: epoch 2), lr 0.00100, 6.7 min; ETA 46.7 min"
    )
    assert event_line({**epoch, "best": True, "eta_s": 0}).endswith("(best so far), lr 0.00100, 6.7 min")
    started = {"type": "started", "config": {"architecture": "resnet", "epochs": 10, "batch_size": 64}}
    started.update(train_counts={"angry": 900, "happy": 1100}, val_counts={"angry": 100}, steps_per_epoch=31)
    assert event_line({**started, "policy": "float32"}) == (
        "training resnet for 10 epochs on 2,000 faces (100 held out for validation), 31 batches of 64 per epoch, "
        "float32"
    )
    assert event_line({**started, "type": "resumed", "start_epoch": 4}).startswith("resuming at epoch 5 of 10 (31")
    assert event_line({"type": "failed", "error": "OSError: disk full"}) == "failed: OSError: disk full"
    assert event_line({"type": "batch", "epoch": 1}) is None and event_line({"type": "finished"}) is None


def test_a_cards_training_reads_as_how_the_model_was_made():
    from fer_core.card_text import how_made

    config = {"finetune_from": "base", "teacher": "pair", "teacher_tta": "flip"}
    training = {"data": "d/train", "epochs_run": 8, "best_epoch": 3, "wall_seconds": 4150.8, "config": config}
    assert how_made({"training": training}) == (
        "trained on d/train: 8 epochs (best 3), 1.2 h, fine-tuned from base, taught by pair (flip)"
    )
    short = {"data": "d", "epochs_run": 2, "best_epoch": 2, "wall_seconds": 95.0, "config": {}}
    assert how_made({"training": short}) == "trained on d: 2 epochs (best 2), 2 min"
    assert how_made({"training": {"data": "d", "weights": "equal"}}) == "trained on d: weights equal"
    both = {**config, "freeze_bn": True, "teacher_mode": "consistent", "second_teacher": "raf", "unlabeled": "u"}
    assert how_made({"training": {"data": "d", "config": {**both, "second_teacher_weight": 0.1}}}) == (
        "trained on d: fine-tuned from base (batch-norm kept), taught by pair (flip) on each augmented batch "
        "and raf (share 0.1), with unlabelled faces"
    )


def test_durations_read_as_an_eta():
    from fer_core.train.events import duration_text

    assert [duration_text(s) for s in (40, 750, 31_320)] == ["40 s", "12.5 min", "8.7 h"]


def test_architecture_menu_states_each_networks_multiply_adds():
    import re

    from fer_core.train.architectures import build_model
    from fer_core.train.config import ARCHITECTURES
    from tests.helpers import keras_multiply_adds

    for name, note in ARCHITECTURES.items():
        if name in ("tiny", "imported"):  # a test net; a network whose size is its source's
            continue
        stated = re.search(r"~(\d+)M multiply-adds", note)
        assert stated, (name, note)
        assert int(stated.group(1)) == round(keras_multiply_adds(build_model(name)) / 1e6), name


def test_real_photo_degradations_run_under_mixed_bfloat16():
    # A CPU with bfloat16 makes `--precision auto` train in mixed_bfloat16: the layer then gets
    # bfloat16 faces, which its blur kernel (float32) once refused.
    from fer_core.train.degrade import RealPhotoDegradation

    layer = RealPhotoDegradation(blur=1.0, rescale=1.0, jpeg=1.0, seed=3, dtype="mixed_bfloat16")
    faces = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype(np.float32)
    out = np.asarray(layer(faces, training=True)).astype(np.float32)
    assert out.shape == faces.shape and np.isfinite(out).all()
    assert 0 <= out.min() and out.max() <= 256  # still pixels (bfloat16 rounds 255 up to 256 at most)
    assert np.abs(out - faces).mean() > 1  # degraded
    np.testing.assert_array_equal(
        np.asarray(layer(faces, training=False)).astype(np.float32), faces.astype("bfloat16").astype(np.float32)
    )

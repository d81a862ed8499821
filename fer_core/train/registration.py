"""Registering a run's result: the best checkpoint exported, measured and carded into the registry.

Its own step after training: `train --resume` on a finished run comes here again, and so does
a run that was stopped (it registers what it has).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import keras

from fer_core.datasets import LabeledFaces, load_labeled
from fer_core.preprocess import Preprocessing
from fer_core.registry import ModelExistsError, registration_folder, write_card
from fer_core.train.config import TrainConfig
from fer_core.train.events import append_event
from fer_core.train.export import TFLITE_WEIGHTS, float32_copy, register_model


def registration_target(config: TrainConfig, run_dir: Path, models_dir: Path) -> Path:
    """The folder to register into; a name taken by another model while the run trained gets a suffix."""
    try:
        return registration_folder(config.register_as, models_dir, config.overwrite, run_dir)
    except ModelExistsError:
        n = 2
        while True:
            try:
                return registration_folder(f"{config.register_as}-{n}", models_dir, False, run_dir)
            except ModelExistsError:
                n += 1


def register_best_checkpoint(
    run_dir: Path, config: TrainConfig, spec: Preprocessing, val: LabeledFaces, state: dict, models_dir: Path
) -> str:
    """Export the run's best checkpoint as a registered model with a full card; returns its name.

    Writes "exporting" and "evaluating" events to the run folder as it goes, so pages can
    show the phase.
    """
    from fer_core.classifier import EmotionClassifier
    from fer_core.evaluation import card_measurements

    best = keras.saving.load_model(run_dir / "checkpoints" / "best.keras", safe_mode=True)
    model = float32_copy(best, config.architecture, config.input_size)
    append_event(run_dir, "exporting", note="best checkpoint -> LiteRT model")
    folder = registration_target(config, run_dir, models_dir)
    card = {
        "name": folder.name,
        "architecture": config.architecture,
        "parameters": int(model.count_params()),
        "input_size": config.input_size,
        "tflite_weights": TFLITE_WEIGHTS,
        "preprocessing": spec.to_dict(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {
            "data": config.data,
            "command": config.command,
            "epochs_run": state["epoch"],
            "best_epoch": state["best_epoch"],
            "wall_seconds": round(state["wall_seconds"], 1),
            "run_dir": str(run_dir.resolve()),
            "config": config.to_dict(),
        },
    }
    register_model(model, folder, card)
    append_event(run_dir, "evaluating", note="calibration, TTA modes, validation and test metrics")
    if config.test_data:
        card["training"]["test_data"] = config.test_data
    test = load_labeled(config.test_data, spec=spec) if config.test_data else None
    card.update(card_measurements(lambda tta, t: EmotionClassifier(folder / "model.tflite", t, tta=tta), val, test))
    write_card(folder, card)
    return folder.name

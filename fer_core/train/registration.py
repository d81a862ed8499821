"""Registering a run's result: the best checkpoint exported, measured and carded into the registry.

Its own step after training: `train --resume` on a finished run comes here again, and so does
a run that was stopped (it registers what it has).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np

from fer_core.datasets import LabeledFaces, load_labeled, validation_split
from fer_core.ensemble import shared_validation
from fer_core.evaluation import card_measurements
from fer_core.models import LiteRTClassifier
from fer_core.preprocess import Preprocessing
from fer_core.registry import (
    KERAS_FILE,
    TFLITE_FILE,
    TFLITE_WEIGHTS,
    ModelError,
    ModelExistsError,
    get_model,
    install_model_folder,
    registration_folder,
    remove_model_files,
    write_card,
)
from fer_core.train.config import TrainConfig
from fer_core.train.events import Reporter, append_event, epoch_history, read_events
from fer_core.train.export import export_checked, float32_copy, register_model


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


def litert_loader(path: Path, spec: Preprocessing):
    """What `card_measurements` calls to load a LiteRT file with a TTA mode, a temperature and threads."""
    return lambda tta, temperature, threads: LiteRTClassifier(path, temperature, tta, threads, spec=spec)


def register_best_checkpoint(
    run_dir: Path,
    config: TrainConfig,
    spec: Preprocessing,
    val: LabeledFaces,
    state: dict,
    models_dir: Path,
    report: Reporter | None = None,
) -> str:
    """Export the run's best checkpoint as a registered model with a full card; returns its name.

    Writes "exporting" and "evaluating" events to the run folder as it goes, so pages can
    show the phase.
    """

    best = keras.saving.load_model(run_dir / "checkpoints" / "best.keras", safe_mode=True)
    model = float32_copy(best, config.architecture, spec.size)
    append_event(run_dir, "exporting", report, note="best checkpoint -> LiteRT model")
    folder = registration_target(config, run_dir, models_dir)
    card = {
        "name": folder.name,
        "architecture": config.architecture,
        "parameters": int(model.count_params()),
        "input_size": spec.size,
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
            "history": epoch_history(read_events(run_dir)),
        },
    }
    register_model(model, folder, card, val.images)
    append_event(run_dir, "evaluating", report, note="calibration, TTA modes, validation and test metrics")
    if config.test_data:
        card["training"]["test_data"] = config.test_data
    test = load_labeled(config.test_data, spec=spec) if config.test_data else None
    card.update(card_measurements(litert_loader(folder / TFLITE_FILE, spec), val, test))
    write_card(folder, card)
    return folder.name


def quantize_model(name: str, weights: str = TFLITE_WEIGHTS, models_dir: Path | None = None, command: str = "") -> str:
    """Export a registered model's LiteRT file again from its Keras weights, then measure its card again.

    For models registered before int8 export existed (or to go back to float16). The validation
    split is rebuilt from the card's training settings; activation ranges, the agreement check,
    calibration and every TTA mode's metrics come from it, and the card's test set is measured
    again when it is still on disk. The new folder replaces the old one only once it is complete.

    Returns:
        The card's new `tflite_weights`.

    Raises:
        ModelError: no such model, an ensemble, no Keras file, or training data that is gone.
    """

    info = get_model(name, models_dir)
    if info.is_ensemble:
        raise ModelError(f"{name!r} is an ensemble: quantize its members, then register it again")
    if not info.keras_path.is_file():
        raise ModelError(f"{name!r} ships without {KERAS_FILE}, so it cannot be exported again")
    keras_file = info.verify(KERAS_FILE)
    split = shared_validation([info])
    if not Path(split["data"]).exists():
        raise ModelError(f"{name!r} was trained on {split['data']}, not on disk now: its validation split is needed")
    spec = info.preprocessing
    val = validation_split(split["data"], split["val_fraction"], split["seed"], spec, split["max_images"])
    model = keras.saving.load_model(keras_file, safe_mode=True)
    stale = ("calibration", "calibration_history", "tta", "metrics", "quantization", "tflite_weights")
    card = {k: v for k, v in info.card.items() if k not in stale}
    staging = info.folder.with_name(f".quantize-{info.folder.name}")
    remove_model_files(staging)
    staging.mkdir(parents=True)
    (staging / KERAS_FILE).write_bytes(keras_file.read_bytes())
    card.update(export_checked(model, staging / TFLITE_FILE, val.images, weights, spec=spec))
    command = command or f"python -m fer_core quantize {name} --weights {weights}"
    card.setdefault("quantization", {"weights": weights})["command"] = command
    test_data = card.get("training", {}).get("test_data")
    test = load_labeled(test_data, spec=spec) if test_data and Path(test_data).exists() else None
    card.update(card_measurements(litert_loader(staging / TFLITE_FILE, spec), val, test))
    write_card(staging, card)
    install_model_folder(staging, info.folder)
    return card["tflite_weights"]


def blend_models(
    name: str,
    first: str,
    second: str,
    share: float,
    models_dir: Path | None = None,
    overwrite: bool = False,
    command: str = "",
) -> str:
    """Register a model whose weights lie between two fine-tunes of one network, and measure it.

    Each weight is `(1 - share) * first + share * second` (batch-norm statistics too). Between a
    model and a fine-tune of it (for example one taught on real photos) this often keeps most of
    what each knows at the cost of one model: `share` trades one kind of face against the other.
    The card is measured on the models' shared validation split (and their test set when it is
    on disk), like a trained model's, and records where its weights came from.

    Returns:
        The new model's name.

    Raises:
        ModelError: a model that is missing, an ensemble, without Keras weights, of another
            architecture, crop or weight shapes, or trained on another validation split; a share
            outside [0, 1]; a name taken without `overwrite`.
    """

    if not 0.0 <= share <= 1.0:
        raise ModelError(f"the share of {second!r} must be between 0 and 1. Received: {share}")
    if name in (first, second):
        raise ModelError(f"the blend {name!r} cannot replace one of the models it is made from")
    infos = [get_model(n, models_dir) for n in (first, second)]
    for info in infos:
        if info.is_ensemble or info.card.get("runtime", "litert") != "litert" or not info.keras_path.is_file():
            raise ModelError(f"{info.name!r} has no Keras weights of its own (an ensemble or a model made elsewhere)")
    a, b = infos
    if (a.card.get("architecture"), a.preprocessing) != (b.card.get("architecture"), b.preprocessing):
        raise ModelError(
            f"{a.name!r} and {b.name!r} are not the same network: {a.card.get('architecture')} on "
            f"{a.preprocessing} vs {b.card.get('architecture')} on {b.preprocessing}"
        )
    split = shared_validation(infos)
    if not Path(split["data"]).exists():
        raise ModelError(
            f"the models were trained on {split['data']}, not on disk now: their validation split is needed"
        )
    models = [keras.saving.load_model(info.verify(KERAS_FILE), safe_mode=True) for info in infos]
    weights_a, weights_b = (m.get_weights() for m in models)
    if [w.shape for w in weights_a] != [w.shape for w in weights_b]:
        raise ModelError(f"{a.name!r} and {b.name!r} have weights of other shapes: not the same network")
    folder = registration_folder(name, models_dir, overwrite)
    models[0].set_weights(
        [
            (1.0 - share) * wa + share * wb if np.issubdtype(wa.dtype, np.floating) else wa
            for wa, wb in zip(weights_a, weights_b)
        ]
    )
    spec = a.preprocessing
    val = validation_split(split["data"], split["val_fraction"], split["seed"], spec, split["max_images"])
    test_data = a.card.get("training", {}).get("test_data")
    command = command or f"python -m fer_core blend {name} --models {first} {second} --share {share}"
    card = {
        "name": folder.name,
        "architecture": a.card.get("architecture"),
        "parameters": int(models[0].count_params()),
        "input_size": a.card.get("input_size"),
        "preprocessing": spec.to_dict(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {
            "data": split["data"],
            "command": command,
            "blend": [{"name": first, "share": round(1.0 - share, 4)}, {"name": second, "share": share}],
            "config": {**split, "test_data": test_data},
        },
    }
    register_model(models[0], folder, card, val.images)
    if test_data:
        card["training"]["test_data"] = test_data
    test = load_labeled(test_data, spec=spec) if test_data and Path(test_data).exists() else None
    card.update(card_measurements(litert_loader(folder / TFLITE_FILE, spec), val, test))
    write_card(folder, card)
    return folder.name

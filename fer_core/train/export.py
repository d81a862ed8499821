"""Turning a trained Keras model into a registered model folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fer_core.preprocess import Preprocessing, to_model_input
from fer_core.registry import (
    KERAS_FILE,
    TFLITE_FILE,
    TFLITE_WEIGHTS,
    WEIGHT_MODES,
    install_model_folder,
    remove_model_files,
    write_card,
)
from fer_core.train.architectures import build_model
from fer_core.train.config import IMPORTED

# A quantized export must label at least this share of the validation faces as the float model
# does; one that strays further is exported with float16 weights instead.
MIN_AGREEMENT = 0.98


def float32_copy(model: keras.Model, architecture: str, size: int) -> keras.Model:
    """The same weights in a float32 copy of the architecture (for export and shipping); an
    "imported" network is rebuilt from its own layers' settings."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        if architecture == IMPORTED:
            config = model.get_config()
            for layer in config["layers"]:
                layer["config"]["dtype"] = "float32"
            clone = keras.Model.from_config(config)  # not compiled: the saved file keeps no optimizer state
        else:
            clone = build_model(architecture, size=size)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clone.set_weights(model.get_weights())
    return clone


def export_tflite(
    model: keras.Model, path: Path, weights: str = TFLITE_WEIGHTS, representative: np.ndarray | None = None
) -> None:
    """Write a TFLite model with a dynamic batch dimension and float32 input and output.

    Args:
        weights: "int8" quantizes weights and activations (activation ranges measured on
            `representative`); "dynamic" stores int8 weights and quantizes activations as it
            runs; "float16" stores half-size weights that run in float32; "float32" as trained.
            Sizes, accuracy and cost of each: tests/benchmarks/bench_inference.py.
        representative: uint8 crops (N, S, S[, C]) like those the model will see; needed for "int8".

    Raises:
        ValueError: an unknown `weights`, or "int8" without representative crops.
    """
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {WEIGHT_MODES}. Received: {weights!r}")
    if weights == "int8" and (representative is None or len(representative) == 0):
        raise ValueError("int8 export needs representative crops (N, S, S) to measure activation ranges")
    face_shape = list(model.input_shape[1:])
    # Going through a SavedModel keeps the Keras 3 variables; converting a bare
    # concrete function loses them.
    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, *face_shape], tf.float32)],
        )
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        if weights != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if weights == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if weights == "int8":
            sample = _representative_sample(representative)
            converter.representative_dataset = lambda: ([face[None]] for face in sample)
        path.write_bytes(converter.convert())


def _representative_sample(crops: np.ndarray, count: int = 400) -> np.ndarray:
    """An evenly spread subset of uint8 crops as the float32 (n, S, S, C) the model takes."""
    step = max(len(crops) // count, 1)
    return to_model_input(np.asarray(crops)[::step][:count])


def export_checked(
    model: keras.Model,
    path: Path,
    representative: np.ndarray,
    weights: str = TFLITE_WEIGHTS,
    spec: Preprocessing | None = None,
) -> dict:
    """Export `model`, checking a quantized file against the float model on `representative`.

    A quantized ("dynamic" or "int8") file that labels fewer than MIN_AGREEMENT of the
    representative faces as the float model does is replaced by a float16 one.

    Returns:
        The card's record of it: {"tflite_weights": ..., "quantization": {...}}.
    """
    from fer_core.models import LiteRTClassifier

    export_tflite(model, path, weights, representative)
    if weights not in ("int8", "dynamic"):
        return {"tflite_weights": weights}
    crops = np.asarray(representative)
    expected = np.concatenate(
        [np.asarray(model(to_model_input(crops[i : i + 256]), training=False)) for i in range(0, len(crops), 256)]
    ).argmax(1)
    agreement = float((LiteRTClassifier(path, spec=spec).logits(crops).argmax(1) == expected).mean())
    record = {"weights": weights, "agreement_with_float": round(agreement, 4), "measured_on": len(crops)}
    if agreement >= MIN_AGREEMENT:
        return {"tflite_weights": weights, "quantization": record}
    export_tflite(model, path, "float16")
    record["note"] = f"agreement below {MIN_AGREEMENT}: exported with float16 weights instead"
    return {"tflite_weights": "float16", "quantization": record}


def register_model(model: keras.Model, folder: Path, card: dict, representative: np.ndarray) -> Path:
    """Write model.keras, model.tflite and card.json, then move them into `folder` at once.

    The LiteRT file is quantized (see `export_checked`, whose record is added to `card`),
    with activation ranges measured on `representative` crops (the validation split).

    `folder` comes from `registry.registration_folder`, which checks the name and whether an
    existing model there may be replaced.

    Returns:
        The model folder.
    """
    staging = folder.with_name(f".staging-{folder.name}")
    remove_model_files(staging)  # left by a crash of an earlier registration
    staging.mkdir(parents=True)
    model.save(staging / KERAS_FILE)
    spec = Preprocessing.from_dict(card["preprocessing"]) if "preprocessing" in card else None
    card.update(export_checked(model, staging / TFLITE_FILE, representative, spec=spec))
    write_card(staging, card)
    install_model_folder(staging, folder)
    return folder

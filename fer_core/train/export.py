"""Turning a trained Keras model into a registered model folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from fer_core.registry import KERAS_FILE, TFLITE_FILE, install_model_folder, remove_model_files, write_card
from fer_core.train.architectures import build_model

TFLITE_WEIGHTS = "float16"  # stored precision of the exported weights (recorded in model cards)


def float32_copy(model: keras.Model, architecture: str, size: int) -> keras.Model:
    """The same weights in a float32 copy of the architecture (for export and shipping)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        clone = build_model(architecture, size=size)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    clone.set_weights(model.get_weights())
    return clone


def export_tflite(model: keras.Model, path: Path, weights: str = TFLITE_WEIGHTS) -> None:
    """Write a TFLite model with a dynamic batch dimension.

    Args:
        weights: "float16" stores half-size weights that run in float32 (accuracy and speed
            compared with "float32" by tests/benchmarks/bench_inference.py).
    """
    if weights not in ("float16", "float32"):
        raise ValueError(f"weights must be 'float16' or 'float32'. Received: {weights!r}")
    size = model.input_shape[1]
    # Going through a SavedModel keeps the Keras 3 variables; converting a bare
    # concrete function loses them.
    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            "serve",
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)],
        )
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serve"])
        if weights == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        path.write_bytes(converter.convert())


def register_model(model: keras.Model, folder: Path, card: dict) -> Path:
    """Write model.keras, model.tflite and card.json, then move them into `folder` at once.

    `folder` comes from `registry.registration_folder`, which checks the name and whether an
    existing model there may be replaced.

    Returns:
        The model folder.
    """
    staging = folder.with_name(f".staging-{folder.name}")
    remove_model_files(staging)  # left by a crash of an earlier registration
    staging.mkdir(parents=True)
    model.save(staging / KERAS_FILE)
    export_tflite(model, staging / TFLITE_FILE)
    write_card(staging, card)
    install_model_folder(staging, folder)
    return folder

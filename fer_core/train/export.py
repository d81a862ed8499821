"""Turning a trained Keras model into a registered model folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from fer_core.registry import KERAS_FILE, TFLITE_FILE, write_card
from fer_core.train.architectures import build_model


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


def export_tflite(model: keras.Model, path: Path) -> None:
    """Write a float32 TFLite model with a dynamic batch dimension."""
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
        path.write_bytes(converter.convert())


def register_model(model: keras.Model, folder: Path, card: dict) -> Path:
    """Write model.keras, model.tflite and card.json into `folder` (replaced atomically).

    Returns:
        The model folder.
    """
    staging = folder.with_name(folder.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    model.save(staging / KERAS_FILE)
    export_tflite(model, staging / TFLITE_FILE)
    write_card(staging, card)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder

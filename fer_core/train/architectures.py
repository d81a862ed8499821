"""Named CNN architectures for 48x48 grayscale faces.

Each builder returns a Keras model that takes uint8-valued float32 crops of shape
(size, size, 1), rescales them itself and outputs float32 logits for the 7 classes.
Only built-in Keras layers are used, so models load with `safe_mode=True`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from fer_core.classes import NUM_CLASSES


def _conv_block(x, filters: int, convs: int, dropout: float, name: str):
    for i in range(convs):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def _vgg_like(size: int, widths: tuple[int, ...], convs: int, head: int, dropout: float, name: str) -> keras.Model:
    inputs = keras.Input((size, size, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    for i, width in enumerate(widths):
        x = _conv_block(x, width, convs, dropout * 0.5, f"b{i}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if head:
        x = layers.Dense(head, use_bias=False, name="head")(x)
        x = layers.BatchNormalization(momentum=0.9, name="head_bn")(x)
        x = layers.ReLU(name="head_relu")(x)
    x = layers.Dropout(dropout, name="head_drop")(x)
    logits = layers.Dense(NUM_CLASSES, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def build_compact(size: int = 48, dropout: float = 0.4) -> keras.Model:
    """Real-time net, about 0.7M parameters (four blocks, 32 to 160 channels)."""
    return _vgg_like(size, (32, 64, 128, 160), 2, 0, dropout, "compact")


def build_vgg(size: int = 48, dropout: float = 0.5) -> keras.Model:
    """Accurate VGG-style net, about 2.8M parameters (four blocks, 48 to 384 channels)."""
    return _vgg_like(size, (48, 96, 192, 384), 2, 256, dropout, "vgg")


def build_tiny(size: int = 48, dropout: float = 0.2) -> keras.Model:
    """A very small net for tests and smoke runs (a few thousand parameters)."""
    return _vgg_like(size, (8, 16), 1, 0, dropout, "tiny")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "compact": build_compact,
    "vgg": build_vgg,
    "tiny": build_tiny,
}


def build_model(name: str, size: int = 48, dropout: float | None = None) -> keras.Model:
    """Build an architecture by name.

    Raises:
        ValueError: unknown architecture name.
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture. Expected one of {sorted(ARCHITECTURES)}. Received: name={name!r}")
    kwargs = {} if dropout is None else {"dropout": dropout}
    return ARCHITECTURES[name](size=size, **kwargs)

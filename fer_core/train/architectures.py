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


def _stem(x, widths: tuple[int, ...], last_stride: int = 1):
    """3x3 convolutions (BN, ReLU) that every deeper family starts with, at full resolution unless
    the last one has a stride."""
    for i, width in enumerate(widths):
        stride = last_stride if i == len(widths) - 1 else 1
        x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"stem_conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"stem_bn{i}")(x)
        x = layers.ReLU(name=f"stem_relu{i}")(x)
    return x


def _residual_block(x, filters: int, stride: int, name: str):
    """A ResNet basic block: two 3x3 convolutions plus a (projected) shortcut."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv0")(x)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn0")(y)
    y = layers.ReLU(name=f"{name}_relu0")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(y)
    y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn1")(y)
    x = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(x)


def _separable_module(x, filters: int, name: str):
    """Xception-style module: two depthwise-separable convolutions, max-pool, strided 1x1 shortcut."""
    shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False, name=f"{name}_proj")(x)
    shortcut = layers.BatchNormalization(momentum=0.9, name=f"{name}_proj_bn")(shortcut)
    y = x
    for i in range(2):
        y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep{i}")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{i}")(y)
        if i == 0:
            y = layers.ReLU(name=f"{name}_relu{i}")(y)
    y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(y)
    x = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(x)


def _head(x, dropout: float):
    """Global average pooling, dropout and float32 logits."""
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_drop")(x)
    return layers.Dense(NUM_CLASSES, dtype="float32", name="logits")(x)


def build_resnet(size: int = 48, dropout: float = 0.3, stem_stride: int = 1, name: str = "resnet") -> keras.Model:
    """Small ResNet, about 1.6M parameters: a 48 px stem, then three stages of two basic blocks."""
    inputs = keras.Input((size, size, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = _stem(x, (32, 48), stem_stride)
    for stage, width in enumerate((48, 96, 192)):
        x = _residual_block(x, width, 2, f"s{stage}b0")
        x = _residual_block(x, width, 1, f"s{stage}b1")
    return keras.Model(inputs, _head(x, dropout), name=name)


def build_resnet_fast(size: int = 48, dropout: float = 0.3) -> keras.Model:
    """The resnet whose stem's second convolution has stride 2, so every stage runs at half the
    resolution: the same weights (a trained resnet can be fine-tuned into it) at about a quarter of
    the multiply-adds."""
    return build_resnet(size, dropout, stem_stride=2, name="resnet_fast")


def build_xception(size: int = 48, dropout: float = 0.3) -> keras.Model:
    """Xception-style net of depthwise-separable modules (a wider mini-Xception), about 0.5M parameters."""
    inputs = keras.Input((size, size, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = _stem(x, (32, 48))
    for i, width in enumerate((96, 192, 384)):
        x = _separable_module(x, width, f"m{i}")
    return keras.Model(inputs, _head(x, dropout), name="xception")


def build_tiny(size: int = 48, dropout: float = 0.2) -> keras.Model:
    """A very small net for tests and smoke runs (a few thousand parameters)."""
    return _vgg_like(size, (8, 16), 1, 0, dropout, "tiny")


# One builder for each name of fer_core.train.config.ARCHITECTURES.
BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "compact": build_compact,
    "vgg": build_vgg,
    "resnet": build_resnet,
    "resnet-fast": build_resnet_fast,
    "xception": build_xception,
    "tiny": build_tiny,
}


def build_model(name: str, size: int = 48, dropout: float | None = None) -> keras.Model:
    """Build an architecture by name.

    Raises:
        ValueError: unknown architecture name.
    """
    if name not in BUILDERS:
        raise ValueError(f"Unknown architecture. Expected one of {sorted(BUILDERS)}. Received: name={name!r}")
    kwargs = {} if dropout is None else {"dropout": dropout}
    return BUILDERS[name](size=size, **kwargs)

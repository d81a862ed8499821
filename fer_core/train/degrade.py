"""Augmentations that make FER-2013's clean crops look like faces from real photos: blur, low
resolution (down and up again) and JPEG artefacts, each applied to a share of the faces."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="fer_core")
class RealPhotoDegradation(keras.layers.Layer):
    """Degrades a share of a batch of (B, S, S, C) float images in [0, 255] while training.

    Args:
        blur: share of faces blurred (Gaussian, sigma 0.4-1.4 px at 48 px).
        rescale: share shrunk to 35-80% of their side and enlarged back (detail lost as in small faces).
        jpeg: share re-encoded as JPEG at quality 30-90.
        seed: seed of the draws.
    """

    def __init__(self, blur: float = 0.0, rescale: float = 0.0, jpeg: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.blur, self.rescale, self.jpeg, self.seed = blur, rescale, jpeg, seed
        self._seeds = keras.random.SeedGenerator(seed)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "blur": self.blur,
            "rescale": self.rescale,
            "jpeg": self.jpeg,
            "seed": self.seed,
        }

    def _pick(self, x: tf.Tensor, changed: tf.Tensor, share: float) -> tf.Tensor:
        chosen = keras.random.uniform([tf.shape(x)[0], 1, 1, 1], seed=self._seeds) < share
        return tf.where(chosen, tf.cast(changed, x.dtype), x)

    def _blurred(self, x: tf.Tensor) -> tf.Tensor:
        sigma = keras.random.uniform([], 0.4, 1.4, seed=self._seeds)
        taps = tf.exp(-0.5 * (tf.range(-2.0, 3.0) / sigma) ** 2)
        taps = taps / tf.reduce_sum(taps)
        channels = x.shape[-1]
        padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
        across = tf.tile(tf.reshape(taps, [1, 5, 1, 1]), [1, 1, channels, 1])
        down = tf.tile(tf.reshape(taps, [5, 1, 1, 1]), [1, 1, channels, 1])
        out = tf.nn.depthwise_conv2d(padded, across, [1, 1, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(out, down, [1, 1, 1, 1], "VALID")

    def _rescaled(self, x: tf.Tensor) -> tf.Tensor:
        size = tf.shape(x)[1:3]
        factor = keras.random.uniform([], 0.35, 0.8, seed=self._seeds)
        small = tf.maximum(tf.cast(tf.cast(size, tf.float32) * factor, tf.int32), 8)
        return tf.image.resize(tf.image.resize(x, small, "area"), size, "bilinear")

    def _jpeg(self, x: tf.Tensor) -> tf.Tensor:
        quality = tf.cast(keras.random.uniform([], 30, 91, seed=self._seeds), tf.int32)
        pixels = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
        coded = tf.map_fn(lambda im: tf.image.adjust_jpeg_quality(im, quality), pixels)
        return tf.cast(coded, x.dtype)

    def call(self, x, training=None):
        if not training:
            return x
        dtype = x.dtype  # bfloat16 under mixed precision: the degradations run in float32
        x = tf.cast(x, tf.float32)
        if self.blur:
            x = self._pick(x, self._blurred(x), self.blur)
        if self.rescale:
            x = self._pick(x, self._rescaled(x), self.rescale)
        if self.jpeg:
            x = self._pick(x, self._jpeg(x), self.jpeg)
        return tf.cast(x, dtype)

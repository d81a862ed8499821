"""Class weights, the tf.data input pipeline (augmentation, mixup, distillation targets), the
distillation loss, and fast logits for validation (the split itself: fer_core.datasets)."""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from fer_core.classes import NUM_CLASSES
from fer_core.preprocess import to_model_input
from fer_core.train.config import Augmentation


def class_weights(labels: np.ndarray, mode: str) -> np.ndarray:
    """Per-class loss weights: "none", "balanced" (inverse frequency) or "sqrt" (its square root).

    Weights are scaled so the average weight over the samples is 1.
    """
    if mode not in ("none", "balanced", "sqrt"):
        raise ValueError(f"class_weighting must be 'none', 'balanced' or 'sqrt'. Received: {mode!r}")
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    if mode == "none":
        return np.ones(NUM_CLASSES, np.float32)
    raw = np.where(counts > 0, counts.sum() / np.maximum(counts, 1), 0.0)
    if mode == "sqrt":
        raw = np.sqrt(raw)
    raw /= (raw[labels]).mean()
    return raw.astype(np.float32)


def training_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
    augmentation: Augmentation,
    label_smoothing: float,
    seed: int,
    mixup: float = 0.0,
    soft_targets: np.ndarray | None = None,
    teacher=None,
    label_targets: np.ndarray | None = None,
    sample_weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Shuffled, augmented batches of (x float32 (B,S,S,C), targets, sample weights) from uint8
    crops (N,S,S) (gray, C = 1) or (N,S,S,3) (colour).

    The uint8 crops stay in memory; augmentation runs batched in parallel map calls so
    both cores stay busy while the model trains. With `mixup` > 0 each face is blended
    with another face of its batch (weight drawn from Beta(mixup, mixup)), and so are
    their targets and sample weights.

    Targets are the smoothed one-hot labels (B, 7), or with `soft_targets` (a teacher's
    probabilities per image, (N, 7)) those followed by the teacher's: (B, 14), as
    `DistillationLoss` expects. With `teacher` instead (a function from float32 crops
    (B, S, S) to probabilities (B, 7)) the teacher's half is computed on each finished batch,
    after augmentation and mixup, so the teacher judges exactly the faces the student sees.
    With both, `soft_targets` is a fixed part per face (N, K) that is mixed along with the faces
    and handed to `teacher` as its second argument: it returns the probabilities from both.

    `label_targets` (N, 7) replaces the smoothed one-hot labels row by row (faces without a label
    learn a teacher's probabilities there), and `sample_weights` (N,) the class weights.
    """
    augment = augmentation.build(seed)
    if sample_weights is None:
        sample_weights = weights[labels]
    if label_targets is None:
        label_targets = (
            np.eye(NUM_CLASSES, dtype=np.float32)[labels] * (1.0 - label_smoothing) + label_smoothing / NUM_CLASSES
        )

    gray = np.ndim(images) == 3  # (N, S, S) gray crops get a channel axis; colour ones have theirs

    def as_crops(x):  # what the teacher function takes: crops shaped as the data's
        return x[..., 0] if gray else x

    def to_training_batch(x, target, w, soft=None):
        x = tf.cast(x, tf.float32)
        if gray:
            x = x[..., None]
        x = augment(x, training=True)
        x = tf.clip_by_value(x, 0.0, 255.0)
        target = tf.cast(target, tf.float32)
        if soft is not None:
            target = tf.concat([target, tf.cast(soft, tf.float32)], axis=-1)
        if mixup > 0:
            x, target, w = _mix_pairs(x, target, w, mixup)
        if teacher is not None:
            if soft is None:
                judged = tf.numpy_function(teacher, [as_crops(x)], tf.float32, stateful=True)
            else:  # the teacher completes each face's fixed part (mixed with the faces, as the labels are)
                fixed, target = target[:, NUM_CLASSES:], target[:, :NUM_CLASSES]
                judged = tf.numpy_function(teacher, [as_crops(x), fixed], tf.float32, stateful=True)
            judged = tf.ensure_shape(judged, [None, NUM_CLASSES])
            target = tf.concat([target, judged], axis=-1)
        return x, target, w

    columns = (images, np.asarray(label_targets, np.float32), np.asarray(sample_weights, np.float32))
    if soft_targets is not None:
        columns += (np.asarray(soft_targets, np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=len(labels) >= batch_size)
    ds = ds.map(to_training_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _beta(shape, alpha: float) -> tf.Tensor:
    """Samples of Beta(alpha, alpha), from two gamma draws."""
    a = tf.random.gamma(shape, alpha)
    b = tf.random.gamma(shape, alpha)
    return a / (a + b)


def _mix_pairs(x: tf.Tensor, target: tf.Tensor, weight: tf.Tensor, alpha: float):
    """Mixup within a batch: face i is blended with face i of a shuffled copy of the batch."""
    n = tf.shape(x)[0]
    order = tf.random.shuffle(tf.range(n))
    lam = _beta([n], alpha)
    lam = tf.maximum(lam, 1.0 - lam)  # each face keeps the larger share, so its own label dominates

    def mix(a: tf.Tensor) -> tf.Tensor:
        share = tf.reshape(tf.cast(lam, a.dtype), [-1] + [1] * (a.shape.rank - 1))
        return share * a + (1.0 - share) * tf.gather(a, order)

    return mix(x), mix(target), mix(tf.cast(weight, tf.float32))


@keras.saving.register_keras_serializable(package="fer_core")
class DistillationLoss(keras.losses.Loss):
    """Knowledge distillation: (1 - weight) * cross-entropy with the labels
    + weight * T^2 * cross-entropy between the teacher's and the student's logits softened by T.

    `y_true` holds the label targets and the teacher's probabilities at temperature T side
    by side (B, 14); `y_pred` the student's logits (B, 7). T^2 keeps the soft term's gradients
    on the scale of the hard term's (Hinton et al., 2015).
    """

    def __init__(self, temperature: float = 2.0, weight: float = 0.7, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)
        self.weight = float(weight)

    def call(self, y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        hard, soft = y_true[:, :NUM_CLASSES], y_true[:, NUM_CLASSES:]
        hard_loss = keras.losses.categorical_crossentropy(hard, y_pred, from_logits=True)
        soft_loss = keras.losses.categorical_crossentropy(soft, y_pred / self.temperature, from_logits=True)
        return (1.0 - self.weight) * hard_loss + self.weight * self.temperature**2 * soft_loss

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature, "weight": self.weight}


_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forward_fn(model: keras.Model):
    """One compiled inference function per model, so repeated calls do not retrace."""
    if model not in _FORWARD:

        @tf.function(input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
        def forward(x):
            return tf.cast(model(x, training=False), tf.float32)

        _FORWARD[model] = forward
    return _FORWARD[model]


def predict_logits(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits for uint8 crops through a direct model call (no Keras `predict` overhead)."""
    forward = _forward_fn(model)
    out = [
        forward(tf.convert_to_tensor(to_model_input(images[i : i + batch_size]))).numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else np.empty((0, NUM_CLASSES), np.float32)

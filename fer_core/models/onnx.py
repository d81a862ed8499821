"""An ONNX Runtime emotion classifier: models made elsewhere, with the input their card declares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_core.classes import NUM_CLASSES
from fer_core.models.base import CropClassifier
from fer_core.onnx_session import OnnxLoadError, open_onnx_session
from fer_core.preprocess import Preprocessing
from fer_core.registry import ModelError

ONNX_LAYOUTS = ("NCHW", "NHWC")


class OnnxClassifier(CropClassifier):
    """Classifies uint8 crops of the card's preprocessing with an ONNX file.

    The crops are scaled to [0, 1], then `(x - mean) / std` per channel, and laid out as the file
    takes them. A file whose batch dimension is fixed at 1 is run one face at a time.

    Args:
        model_path: an ONNX file taking float32 images and giving 7 logits per face.
        spec: the crops it takes (size and colour must match the file's input).
        mean, std: per-channel normalisation after scaling to [0, 1].
        layout: "NCHW" or "NHWC".
        temperature, tta: as for every classifier.
        num_threads: ONNX Runtime intra-op threads.

    Raises:
        ModelError: the file cannot be opened, or its input or output does not fit the card.
    """

    def __init__(
        self,
        model_path: str | Path,
        spec: Preprocessing,
        mean: float | list[float] = 0.0,
        std: float | list[float] = 1.0,
        layout: str = "NCHW",
        temperature: float = 1.0,
        tta: str = "none",
        num_threads: int = 1,
    ):
        super().__init__(temperature, tta)
        self.model_path = Path(model_path)
        if layout not in ONNX_LAYOUTS:
            raise ModelError(f"{self.model_path}: layout must be one of {ONNX_LAYOUTS}. Received: {layout!r}")
        try:
            self._session = open_onnx_session(self.model_path, num_threads)
        except OnnxLoadError as e:
            raise ModelError(str(e)) from e
        self.spec, self.layout = spec, layout
        self.input_size, self.crop_shape = spec.size, spec.crop_shape
        channels = 1 if spec.color == "gray" else 3
        self._mean = np.asarray(mean, np.float32).reshape(-1)
        self._std = np.asarray(std, np.float32).reshape(-1)
        given = self._session.get_inputs()[0]
        want = (channels, spec.size, spec.size) if layout == "NCHW" else (spec.size, spec.size, channels)
        if len(given.shape) != 4 or any(isinstance(d, int) and d != w for d, w in zip(given.shape[1:], want)):
            raise ModelError(f"{self.model_path}: input shape {given.shape} does not take {layout} crops of {want}")
        self._input_name = given.name
        self._fixed_batch = given.shape[0] if isinstance(given.shape[0], int) else None
        out = self._session.get_outputs()[0].shape
        if not out or out[-1] != NUM_CLASSES:
            raise ModelError(f"{self.model_path}: output shape {out} is not (N, {NUM_CLASSES})")

    def to_input(self, crops: np.ndarray) -> np.ndarray:
        """Float32 network input for uint8 crops (N, *crop_shape)."""
        x = crops.astype(np.float32) / 255.0
        if x.ndim == 3:
            x = x[..., None]
        x = (x - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)

    def _run_chunk(self, crops: np.ndarray) -> np.ndarray:
        x = self.to_input(crops)
        if self._fixed_batch is None:
            return self._session.run(None, {self._input_name: x})[0].reshape(len(x), NUM_CLASSES)
        return np.concatenate([self._session.run(None, {self._input_name: x[i : i + 1]})[0] for i in range(len(x))])

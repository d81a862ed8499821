"""A LiteRT (TFLite) emotion classifier: this project's own exported models, no TensorFlow import."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_core.classes import NUM_CLASSES
from fer_core.models.base import CropClassifier
from fer_core.preprocess import Preprocessing, to_model_input
from fer_core.registry import ModelError

_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class LiteRTClassifier(CropClassifier):
    """Classifies preprocessed uint8 face crops into the 7 emotions.

    Batches are padded up to a few fixed sizes so the interpreter is resized rarely;
    a lock makes one instance safe to share between the video thread and pages.

    Args:
        model_path: a `.tflite` file taking float32 (N, S, S, 1) and giving logits (N, 7).
        temperature: softmax temperature from calibration (1.0 = none).
        tta: test-time augmentation, a key of `TTA_MODES` ("none", "flip", "crops"); the
            logits of all views of a face are averaged.
        num_threads: interpreter threads.
        spec: the card's preprocessing (a plain margin crop at the file's input size if None).
    """

    def __init__(
        self,
        model_path: str | Path,
        temperature: float = 1.0,
        tta: str = "none",
        num_threads: int = 1,
        spec: Preprocessing | None = None,
    ):
        from ai_edge_litert.interpreter import Interpreter

        super().__init__(temperature, tta)
        self.model_path = Path(model_path)
        try:
            self._interpreter = Interpreter(model_path=str(self.model_path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.model_path}: not a loadable TFLite model ({e})") from e
        detail_in = self._interpreter.get_input_details()[0]
        detail_out = self._interpreter.get_output_details()[0]
        self._input_index = detail_in["index"]
        self._output_index = detail_out["index"]
        self.input_size = int(detail_in["shape"][1])
        self._channels = int(detail_in["shape"][3])
        # gray crops are (S, S); colour ones (S, S, 3)
        self.crop_shape = (self.input_size, self.input_size) + ((self._channels,) if self._channels != 1 else ())
        self.spec = spec or Preprocessing(size=self.input_size)
        if self.spec.crop_shape != self.crop_shape:
            raise ModelError(f"{self.model_path}: takes {self.crop_shape} crops, not the card's {self.spec.crop_shape}")
        if tuple(detail_out["shape"][1:]) != (NUM_CLASSES,):
            raise ModelError(f"{self.model_path}: output shape {detail_out['shape']} is not (N, {NUM_CLASSES})")
        self._batch = int(detail_in["shape"][0])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input_index, list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(self._input_index, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output_index).copy()

    def _run_chunk(self, crops: np.ndarray) -> np.ndarray:
        n = len(crops)
        size = next((b for b in _BUCKETS if b >= n), n)
        batch = np.zeros((size, self.input_size, self.input_size, self._channels), np.float32)
        batch[:n] = to_model_input(crops)
        return self._run(batch)[:n]

    def multiply_adds(self) -> int:
        """Multiply-adds the network does for one view of one face (its convolutions and dense layers).

        A measure of cost that, unlike milliseconds, is the same on every machine; TTA multiplies it
        by the number of views.
        """
        with self._lock:
            shapes = {t["index"]: t["shape"] for t in self._interpreter.get_tensor_details()}
            ops = self._interpreter._get_ops_details()  # LiteRT's op list: name, input and output tensors
        return sum(_op_multiply_adds(op, shapes) for op in ops)


def _op_multiply_adds(op: dict, shapes: dict[int, np.ndarray]) -> int:
    """Multiply-adds of one LiteRT op for one item of the batch (0 for ops that do none worth counting)."""
    name = op["op_name"]
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return 0
    out = shapes[op["outputs"][0]]
    kernel = shapes[op["inputs"][1]]
    per_output = int(np.prod(out[1:]))  # output values of one item
    if name == "CONV_2D":  # kernel (out_channels, kh, kw, in_channels)
        return per_output * int(np.prod(kernel[1:]))
    if name == "DEPTHWISE_CONV_2D":  # kernel (1, kh, kw, channels): one input channel per output
        return per_output * int(kernel[1] * kernel[2])
    return per_output * int(kernel[-1])  # FULLY_CONNECTED: kernel (units, inputs)

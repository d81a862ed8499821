"""The per-face emotion classifier: an exported LiteRT (TFLite) model, no TensorFlow import."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from fer_core.classes import NUM_CLASSES
from fer_core.metrics import softmax
from fer_core.preprocess import to_model_input
from fer_core.registry import ModelError, ModelInfo, get_model
from fer_core.tta import check_tta_mode, tta_views

_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class EmotionClassifier:
    """Classifies preprocessed uint8 face crops into the 7 emotions.

    Batches are padded up to a few fixed sizes so the interpreter is resized rarely;
    a lock makes one instance safe to share between the video thread and pages.

    Args:
        model_path: a `.tflite` file taking float32 (N, S, S, 1) and giving logits (N, 7).
        temperature: softmax temperature from calibration (1.0 = none).
        tta: test-time augmentation, a key of `TTA_MODES` ("none", "flip", "crops"); the
            logits of all views of a face are averaged.
        num_threads: interpreter threads.
    """

    def __init__(self, model_path: str | Path, temperature: float = 1.0, tta: str = "none", num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.model_path = Path(model_path)
        self.temperature = float(temperature)
        self.tta = check_tta_mode(tta)
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
        if tuple(detail_out["shape"][1:]) != (NUM_CLASSES,):
            raise ModelError(f"{self.model_path}: output shape {detail_out['shape']} is not (N, {NUM_CLASSES})")
        self._batch = int(detail_in["shape"][0])
        self._lock = threading.Lock()

    @classmethod
    def from_registry(cls, info: ModelInfo | str | None = None, tta: str = "none") -> EmotionClassifier:
        """Load a registered model (the active one by default), checking its card and hash.

        An ensemble card gives an `EnsembleClassifier`, which has the same methods.
        """
        if not isinstance(info, ModelInfo):
            info = get_model(info)
        if info.is_ensemble:
            from fer_core.ensemble import EnsembleClassifier

            return EnsembleClassifier.from_registry(info, tta=tta)
        return cls(info.verify(), temperature=info.temperature_for(tta), tta=tta)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input_index, list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(self._input_index, batch)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output_index).copy()

    def _logits_chunk(self, crops: np.ndarray) -> np.ndarray:
        n = len(crops)
        size = next((b for b in _BUCKETS if b >= n), n)
        batch = np.zeros((size, self.input_size, self.input_size, 1), np.float32)
        batch[:n] = to_model_input(crops)
        return self._run(batch)[:n]

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """Raw logits (N, 7) for uint8 crops (N, S, S)."""
        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (self.input_size, self.input_size):
            raise ValueError(
                f"Expected crops of shape (N, {self.input_size}, {self.input_size}). Received: shape={crops.shape}"
            )
        if len(crops) == 0:
            return np.empty((0, NUM_CLASSES), np.float32)
        views = tta_views(crops, self.tta)
        crops = views.reshape(-1, *crops.shape[1:])
        step = _BUCKETS[-1]
        with self._lock:
            out = np.concatenate([self._logits_chunk(crops[i : i + step]) for i in range(0, len(crops), step)])
        return out.reshape(len(views), -1, NUM_CLASSES).mean(axis=0)

    def predict_proba(self, crops: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 7) in EMOTIONS order."""
        return softmax(self.logits(crops), self.temperature)

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

"""ONNX Runtime sessions on the CPU, opened one way for the face detector and the classifiers."""

from __future__ import annotations

from pathlib import Path


class OnnxLoadError(RuntimeError):
    """An ONNX file could not be opened; the message names it and the runtime's reason."""


def open_onnx_session(path: Path, threads: int = 1):
    """An `onnxruntime.InferenceSession` for `path` on the CPU with `threads` intra-op threads.

    Raises:
        OnnxLoadError: the file is missing, unreadable or not a valid ONNX model.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise OnnxLoadError(f"{path}: not a loadable ONNX model ({e})") from e

"""Derive this folder's `model.onnx` from OpenCV Zoo's facial-expression model.

Upstream's file (`facial_expression_recognition_mobilefacenet_2022july_int8.onnx`, int8 weights)
declares a batch of 1. The network itself has no fixed batch (its one reshape is a Flatten on axis
1), so only the declared shapes change: the input's and output's first dimension become a free
`batch`, and the stored intermediate shapes are dropped. Weights and operators are untouched.
A batch of 64 faces then runs in one call instead of 64 (tests/benchmarks/BENCHMARKS.md).

    python fer_core/assets/derive_raf_fer.py \\
        ../shared/models/opencv_fer/facial_expression_recognition_mobilefacenet_2022july_int8.onnx \\
        models/raf-mobilefacenet/model.onnx

Needs the `onnx` package (requirements-dev.txt); the app itself only reads the result.
"""

from __future__ import annotations

import sys
from pathlib import Path


def derive(source: str | Path, target: str | Path) -> None:
    """Write `source` with a free batch dimension to `target`."""
    import onnx

    model = onnx.load(str(source))
    for value in (*model.graph.input, *model.graph.output):
        batch = value.type.tensor_type.shape.dim[0]
        batch.ClearField("dim_value")
        batch.dim_param = "batch"
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    derive(sys.argv[1], sys.argv[2])

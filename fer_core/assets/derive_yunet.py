"""Derive the shipped `yunet_n.onnx` from upstream's `yunet_n_640_640.onnx`.

Upstream's file declares a fixed 640x640 input. OpenCV ignores that, ONNX Runtime does not, and
ONNX Runtime runs this network about twice as fast as OpenCV's dnn module here. Nothing but the
declared shapes changes: the input's height and width become free (`height`, `width`), the
outputs' anchor counts likewise, and the stored intermediate shapes are dropped. Weights and
operators are untouched (the network's reshapes already use -1).

    python fer_core/assets/derive_yunet.py ../shared/models/yunet/yunet_n_640_640.onnx fer_core/assets/yunet_n.onnx

Needs the `onnx` package (requirements-dev.txt); the app itself only reads the result.
"""

from __future__ import annotations

import sys
from pathlib import Path


def derive(source: str | Path, target: str | Path) -> None:
    """Write `source` with free input size and output lengths to `target`."""
    import onnx

    model = onnx.load(str(source))
    (image,) = model.graph.input
    dims = image.type.tensor_type.shape.dim
    for index, name in ((2, "height"), (3, "width")):
        dims[index].ClearField("dim_value")
        dims[index].dim_param = name
    for output in model.graph.output:
        anchors = output.type.tensor_type.shape.dim[1]
        anchors.ClearField("dim_value")
        anchors.dim_param = f"anchors_{output.name.rsplit('_', 1)[-1]}"
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: derive_yunet.py SOURCE.onnx TARGET.onnx")
    derive(sys.argv[1], sys.argv[2])

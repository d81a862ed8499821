"""An ONNX classifier's network rebuilt as a Keras model, so it can be fine-tuned like our own.

Models made elsewhere (e.g. OpenCV Zoo's RAF-DB MobileFaceNet) ship as ONNX files, often with
int8 weights. `import_onnx_classifier` walks the graph and builds the same network from built-in
Keras layers (so checkpoints load with `safe_mode=True`), each weight dequantized to float32;
activations are no longer quantized, so the rebuilt network is the float network the int8 file
approximates. The Keras model takes the card's uint8 crops (N, S, S, C) as floats, as every model
trained here does, and applies the card's normalisation in its first layer.

The operators of convolutional classifiers are understood: Conv / QLinearConv (grouped as
depthwise), PRelu, Relu, Add / QLinearAdd, MatMul / QLinearMatMul / Gemm (with a bias Add
folded in), GlobalAveragePool, Flatten of a 1x1 map, Quantize/DequantizeLinear (dropped). Any other operator is
refused by name.
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
from keras import layers

FLOAT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


class OnnxImportError(ValueError):
    """The ONNX file holds a network this importer cannot rebuild; the message says what."""


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _dequantized(values: dict, name: str, scale: str | None = None, zero: str | None = None) -> np.ndarray:
    """An initializer as float32, dequantized with its scale and zero point when given."""
    w = values[name].astype(np.float32)
    if scale is None:
        return w
    s = values[scale].astype(np.float32)
    z = values[zero].astype(np.float32) if zero else np.float32(0)
    if s.ndim == 1 and s.size > 1:  # per output channel (axis 0)
        shape = (-1,) + (1,) * (w.ndim - 1)
        s, z = s.reshape(shape), np.asarray(z).reshape(shape) if np.ndim(z) else z
    return (w - z) * s


class _Builder:
    """Builds Keras tensors node by node; `tensors` maps ONNX tensor names to Keras tensors."""

    def __init__(self, graph, values: dict):
        self.graph, self.values = graph, values
        self.tensors: dict = {}
        self.weights: dict[str, list[np.ndarray]] = {}
        self.consumers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.skip: set[int] = set()

    def layer_name(self, node) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", node.output[0])
        return f"onnx_{node.op_type.lower()}_{base}"

    def conv(self, node, quantized: bool):
        a = _attributes(node)
        i = node.input
        if quantized:
            w = _dequantized(self.values, i[3], i[4], i[5])
            bias = i[8] if len(i) > 8 and i[8] else None
            b = None
            if bias:  # int32 bias in units of input scale x weight scale
                b = self.values[bias].astype(np.float32) * self.values[i[1]] * self.values[i[4]].reshape(-1)
            x = self.tensors[i[0]]
        else:
            w = _dequantized(self.values, i[1])
            b = _dequantized(self.values, i[2]) if len(i) > 2 and i[2] else None
            x = self.tensors[i[0]]
        if a.get("dilations", [1, 1]) != [1, 1] or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise OnnxImportError(f"node {node.name or node.output[0]}: dilations or auto_pad are not supported")
        out_ch, in_per_group, kh, kw = w.shape
        group = int(a.get("group", 1))
        strides = tuple(a.get("strides", [1, 1]))
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        name = self.layer_name(node)
        if any((top, left, bottom, right)):
            x = layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{name}_pad")(x)
        if group == 1:
            layer = layers.Conv2D(out_ch, (kh, kw), strides=strides, use_bias=b is not None, name=name)
            kernel = w.transpose(2, 3, 1, 0)
        elif in_per_group == 1 and group == out_ch:
            layer = layers.DepthwiseConv2D((kh, kw), strides=strides, use_bias=b is not None, name=name)
            kernel = w.transpose(2, 3, 0, 1)
        else:
            raise OnnxImportError(f"node {node.name or node.output[0]}: grouped convolution (group {group})")
        self.tensors[node.output[0]] = layer(x)
        self.weights[name] = [kernel] + ([b] if b is not None else [])

    def prelu(self, node):
        slope = self.values[node.input[1]].astype(np.float32).reshape(-1)
        x = self.tensors[node.input[0]]
        name = self.layer_name(node)
        self.tensors[node.output[0]] = layers.PReLU(shared_axes=[1, 2], name=name)(x)
        self.weights[name] = [np.broadcast_to(slope, (1, 1, x.shape[-1])).copy()]

    def add(self, node, quantized: bool):
        a_name, b_name = (node.input[0], node.input[3]) if quantized else (node.input[0], node.input[1])
        if b_name in self.values or a_name in self.values:
            raise OnnxImportError(f"node {node.name or node.output[0]}: an Add of a constant that follows no MatMul")
        self.tensors[node.output[0]] = layers.Add(name=self.layer_name(node))(
            [self.tensors[a_name], self.tensors[b_name]]
        )

    def dense(self, node):
        """MatMul / QLinearMatMul / Gemm with a weight initializer, and a following bias Add folded in."""
        i = node.input
        if node.op_type == "QLinearMatMul":
            x, w = self.tensors[i[0]], _dequantized(self.values, i[3], i[4], i[5])
        else:
            x, w = self.tensors[i[0]], _dequantized(self.values, i[1])
        b, out = None, node.output[0]
        if node.op_type == "Gemm":
            a = _attributes(node)
            if a.get("transB", 0):
                w = w.T
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                raise OnnxImportError(f"node {node.name or out}: Gemm with transA, alpha or beta")
            b = _dequantized(self.values, i[2]) if len(i) > 2 and i[2] else None
        nexts = self.consumers.get(out, [])
        if b is None and len(nexts) == 1 and nexts[0].op_type in ("Add", "QLinearAdd"):
            add = nexts[0]
            j = add.input
            other = (j[3], j[4], j[5]) if add.op_type == "QLinearAdd" else (j[1], None, None)
            if other[0] in self.values:
                b = _dequantized(self.values, *other).reshape(-1)
                out = add.output[0]
                self.skip.add(id(add))
        name = self.layer_name(node)
        self.tensors[out] = layers.Dense(w.shape[1], use_bias=b is not None, name=name)(x)
        self.weights[name] = [w] + ([b] if b is not None else [])

    def flatten(self, node):
        x = self.tensors[node.input[0]]
        if len(x.shape) == 4 and tuple(x.shape[1:3]) != (1, 1):
            raise OnnxImportError(f"node {node.name or node.output[0]}: Flatten of a {x.shape[1:3]} map")
        self.tensors[node.output[0]] = layers.Flatten(name=self.layer_name(node))(x)

    def run(self, node) -> None:
        op = node.op_type
        if id(node) in self.skip:
            return
        if op in FLOAT_OPS:
            self.tensors[node.output[0]] = self.tensors[node.input[0]]
        elif op in ("Conv", "QLinearConv"):
            self.conv(node, op == "QLinearConv")
        elif op == "PRelu":
            self.prelu(node)
        elif op == "Relu":
            self.tensors[node.output[0]] = layers.ReLU(name=self.layer_name(node))(self.tensors[node.input[0]])
        elif op in ("Add", "QLinearAdd"):
            self.add(node, op == "QLinearAdd")
        elif op in ("MatMul", "QLinearMatMul", "Gemm"):
            self.dense(node)
        elif op == "Flatten":
            self.flatten(node)
        elif op == "GlobalAveragePool":
            pool = layers.GlobalAveragePooling2D(keepdims=True, name=self.layer_name(node))
            self.tensors[node.output[0]] = pool(self.tensors[node.input[0]])
        else:
            raise OnnxImportError(f"operator {op} (node {node.name or node.output[0]}) is not supported")


def import_onnx_classifier(path: str | Path, size: int, channels: int, mean, std, name: str = "imported"):
    """The network of an ONNX classifier (NCHW float input, logits out) as a float32 Keras model.

    Args:
        path: the ONNX file.
        size, channels: the crops it takes (size x size x channels).
        mean, std: its input normalisation after scaling to [0, 1] (one value, or one per channel).
        name: the Keras model's name.

    Returns:
        A Keras model taking uint8-valued float32 crops (N, size, size, channels) and giving logits.

    Raises:
        OnnxImportError: an operator or a shape this importer does not rebuild (named).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in values]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise OnnxImportError(f"{path}: expected one input and one output, found {len(inputs)} and {len(graph.output)}")
    mean = np.broadcast_to(np.asarray(mean, np.float32).reshape(-1), (channels,))
    std = np.broadcast_to(np.asarray(std, np.float32).reshape(-1), (channels,))
    face = keras.Input((size, size, channels), name="face")
    scale, offset = 1.0 / (255.0 * std), -mean / std
    if len(set(scale.tolist())) == 1 and len(set(offset.tolist())) == 1:
        x = layers.Rescaling(float(scale[0]), float(offset[0]), name="scale")(face)
    else:
        x = layers.Rescaling(scale.tolist(), offset.tolist(), name="scale")(face)
    builder = _Builder(graph, values)
    builder.tensors[inputs[0].name] = x
    for node in graph.node:
        builder.run(node)
    out = graph.output[0].name
    if out not in builder.tensors:
        raise OnnxImportError(f"{path}: the output {out!r} was not reached")
    net = keras.Model(
        face, layers.Activation("linear", dtype="float32", name="logits")(builder.tensors[out]), name=name
    )
    for layer_name, weights in builder.weights.items():
        net.get_layer(layer_name).set_weights(weights)
    return net

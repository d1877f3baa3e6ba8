"""Reduced-precision copies of the fp32 vision graph, each made with onnxruntime's own tools.

* fp16: weights and compute in float16, inputs and outputs still float32.
* int8: dynamic quantization, per-channel int8 weights of every weight MatMul (MatMulInteger).
* int4: weight-only 4-bit blocks (MatMulNBits), activations stay float32.

The quantizers only look at MatMul nodes whose second input is a weight; the dynamo exporter
writes linears on 2-D inputs as Gemm, so those are rewritten to MatMul + Add first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from qtool.runtime import onnx_io as io

INT4_BLOCK_SIZE = 32     # weights per scale along the input axis (MatMulNBits pads a ragged last block)
# int8 leaves the patch embedding (onnx_vision.VisionGraph.patch_weight) in float: it is small next to
# the blocks, and quantizing it doubled int8's error on the held-out images (int4's did not move)
INT8_KEEP_FLOAT = ("patch_weight",)


def gemm_to_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite each ``Gemm(A, W, b)`` with a weight W into ``MatMul(A, W') + b`` (in place)."""
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes, transposed = [], set()
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in weights:
            nodes.append(node)
            continue
        weight = weights[node.input[1]]
        if attrs.get("transB", 0):
            array = numpy_helper.to_array(weight)
            weight.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array.T), weight.name))
            transposed.add(weight.name)
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], node.input[1]], [product], name=f"{node.name}_MatMul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [v for v in graph.value_info if v.name not in transposed]   # stale shapes of the old weights
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return model


def weight_matmuls(model: onnx.ModelProto, keep_float: tuple[str, ...] = ()) -> list[str]:
    """Names of the MatMul nodes to quantize: a weight as second input, not one of ``keep_float``."""
    weights = {t.name for t in model.graph.initializer} - set(keep_float)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def to_fp16(src: Path, dst: Path) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # the exporter already wrote value_info; its own shape inference cannot serialize models over 2 GiB
    model = convert_float_to_float16(_load(src), keep_io_types=True, disable_shape_infer=True)
    _save(model, dst)


def to_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = gemm_to_matmul(_load(src))
    with _quiet_root_logger():   # "consider pre-processing" advice, logged on the root logger
        quantize_dynamic(model, dst, per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=weight_matmuls(model, INT8_KEEP_FLOAT),
                         use_external_data_format=_large(src), extra_options={"MatMulConstBOnly": True})


def to_int4(src: Path, dst: Path, block_size: int = INT4_BLOCK_SIZE) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = gemm_to_matmul(_load(src))
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=block_size, is_symmetric=True)
    quantizer.process()
    _save(quantizer.model.model, dst)


# precision -> writer(fp32 file, output file)
VARIANTS: dict[str, Callable[[Path, Path], None]] = {"fp16": to_fp16, "int8": to_int8, "int4": to_int4}


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _load(src: Path) -> onnx.ModelProto:
    return onnx.load(str(src))


def _large(src: Path) -> bool:
    return src.with_name(src.name + ".data").is_file()


def _save(model: onnx.ModelProto, dst: Path) -> None:
    large = sum(len(t.raw_data) for t in model.graph.initializer) > io.EXTERNAL_DATA_BYTES
    onnx.save(model, str(dst), save_as_external_data=large, location=f"{dst.name}.data" if large else None)

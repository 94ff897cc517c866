"""Every int8 quantisation the project does, in one place: PyTorch dynamic int8 for a loaded
encoder, and ONNX Runtime dynamic int8 for an exported student graph.

Both are *dynamic*: weights are stored int8, activations are quantised per call, so no calibration
set is needed and a promote can quantise any student. The ONNX form was chosen by measurement
(``benchmarks/bench_serving.py latency`` and ``quality``; figures in ``docs/benchmarks.md``):
per-tensor signed int8 weights on every MatMul/Attention/embedding of the fused encoder and on the
heads' Gemm nodes (ONNX Runtime 1.32's dynamic quantiser turns them into ``MatMulIntegerToFloat``;
they are < 1% of the run). Per-channel weights agreed more often with
the PyTorch edits but lost more than 0.5 points of real-request direction accuracy in both runs and
were slower; reduce-range lost quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The ONNX Runtime quantisation the registry stores on promote (``student.int8.onnx``).
ONNX_INT8 = {"method": "dynamic", "weight_type": "QInt8", "per_channel": False, "reduce_range": False,
             "fp32_nodes": []}


def torch_int8(module: Any) -> Any:
    """``module`` with dynamic int8 Linear layers (CPU); PyTorch's own kernels."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notices; the API works on the pinned torch
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


def onnx_int8(src: Path, dst: Path, *, per_channel: bool = False, reduce_range: bool = False,
              fp32_nodes: list[str] | None = None) -> None:
    """Write the dynamic int8 form of the ONNX graph ``src`` to ``dst``."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantiser logs a "consider pre-processing" hint on every call
    try:
        # DefaultTensorType: the fused graph has contrib ops (Attention, SkipLayerNormalization) whose
        # outputs ONNX shape inference cannot type; they are float.
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel, reduce_range=reduce_range,
                         nodes_to_exclude=list(fp32_nodes or []),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        quiet.setLevel(level)

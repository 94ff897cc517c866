"""Every int8 quantisation the project does, in one place: PyTorch dynamic int8 for a loaded
encoder, and ONNX Runtime dynamic int8 for an exported student graph.

Both are *dynamic*: weights are stored int8, activations are quantised per call, so no calibration
set is needed and a promote can quantise any student.

The ONNX form (``ONNX_INT8``) was chosen by measurement (``benchmarks/bench_serving.py latency`` and
``quality``, and a node-by-node probe on two trained 3-layer students; figures in
``docs/benchmarks.md``, "round 8"): signed int8 weights **per output channel** on the encoder's
Attention / MatMul / embedding nodes, with three parts left fp32:

* the heads and the pooler (``/heads/``, ``/pooler/``): < 5% of the run; per-channel int8 cannot
  run there anyway (ONNX Runtime 1.32 rejects a per-channel zero point on the label-wise heads'
  batched 3-D MatMul);
* the FFN output projection of the first two encoder layers: its input (the GELU output) carries
  the outlier activations that one per-tensor activation scale rounds away. Quantising every node
  (round 7's form) lost 2 and 7 of 300 real requests and 2.4 / 1.9 points of unseen-intent overall
  against PyTorch; keeping layer 0's FFN output fp32 alone recovered most of it, attention or the
  last layer fp32 recovered nothing.

The chosen form: −1 and 0 of 300 real requests against PyTorch, −0.6 / −0.8 points of unseen-intent
overall (so the issue's 0.5 points hold on real requests, not quite on unseen intents), edit scores
99.4% / 99.1% the same as PyTorch's (round 7's form: 97.9% / 96.6%), at 1.25× the CPU per prompt of
every-node int8 on a loaded core. Keeping every FFN fp32 came closer on unseen intents but costs
most of fp32's time. Static int8 was not tried: a calibrated per-tensor scale is coarser than the
per-call one, and the outliers are what costs. Reduce-range lost quality.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The ONNX Runtime quantisation the registry stores on promote (``student.int8.onnx``). ``fp32_nodes``
# are regular expressions (``re.search``) over the fused graph's node names (TorchScript scope names).
ONNX_INT8: dict[str, Any] = {
    "method": "dynamic", "weight_type": "QInt8", "per_channel": True, "reduce_range": False,
    "fp32_nodes": [r"^/heads/", r"^/pooler/", r"^/encoder/encoder/layer\.[01]/output/dense/MatMul$"],
}


def torch_int8(module: Any) -> Any:
    """``module`` with dynamic int8 Linear layers (CPU); PyTorch's own kernels."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notices; the API works on the pinned torch
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


def fp32_node_names(graph: Any, patterns: Sequence[str]) -> list[str]:
    """The names of ``graph``'s nodes (an ``onnx.GraphProto``) that match any of ``patterns``.

    A pattern that matches no node is an error, not a no-op: the exporter's node names changed and
    the fp32 choice would otherwise drift away silently.
    """
    names = [n.name for n in graph.node]
    unmatched = [p for p in patterns if not any(re.search(p, name) for name in names)]
    if unmatched:
        msg = (f"no node of the graph matches {unmatched} (ONNX_INT8['fp32_nodes']): the export's node names "
               "changed; update the patterns in trainer/quantize.py and re-measure with bench_serving.py quality")
        raise ValueError(msg)
    return [name for name in names if any(re.search(p, name) for p in patterns)]


def onnx_int8(src: Path, dst: Path, *, per_channel: bool | None = None, reduce_range: bool | None = None,
              fp32_nodes: Sequence[str] | None = None, weight_type: str | None = None) -> list[str]:
    """Write the dynamic int8 form of the ONNX graph ``src`` to ``dst``; returns the nodes kept fp32.

    Each option left None takes its ``ONNX_INT8`` value (the stored form); ``fp32_nodes`` are name
    patterns (``fp32_node_names``); ``weight_type`` is ``"QInt8"`` or ``"QUInt8"`` (activations are
    always unsigned: ONNX Runtime's dynamic quantiser has no signed activations).
    """
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    per_channel = bool(ONNX_INT8["per_channel"]) if per_channel is None else per_channel
    reduce_range = bool(ONNX_INT8["reduce_range"]) if reduce_range is None else reduce_range
    patterns = list(ONNX_INT8["fp32_nodes"] if fp32_nodes is None else fp32_nodes)
    weights = getattr(QuantType, str(ONNX_INT8["weight_type"] if weight_type is None else weight_type))
    graph = onnx.load(str(src), load_external_data=False).graph
    keep = fp32_node_names(graph, patterns)
    # The quantiser rewrites a Gemm into "<name>_MatMul" + "<name>_Add" before it reads
    # nodes_to_exclude, so a Gemm is kept fp32 under its rewritten name.
    gemms = {n.name for n in graph.node if n.op_type == "Gemm"}
    exclude = keep + [f"{name}_MatMul" for name in keep if name in gemms]

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantiser logs a "consider pre-processing" hint on every call
    try:
        # DefaultTensorType: the fused graph has contrib ops (Attention, SkipLayerNormalization) whose
        # outputs ONNX shape inference cannot type; they are float.
        quantize_dynamic(src, dst, weight_type=weights, per_channel=per_channel, reduce_range=reduce_range,
                         nodes_to_exclude=exclude, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        quiet.setLevel(level)
    return keep

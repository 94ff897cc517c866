"""Every int8 quantisation the project does, in one place: PyTorch dynamic int8 for a loaded
encoder, and ONNX Runtime dynamic int8 for an exported student graph.

Both are *dynamic*: weights are stored int8, activations are quantised per call, so a promote can
quantise any student without a calibration set; the ONNX form only picks its outlier channels from
the student's activations on a few fixed prompts (``CALIBRATION_PROMPTS``).

The ONNX form (``ONNX_INT8``) was chosen by measurement (``benchmarks/bench_serving.py quality``
on three trained 3-layer students, and ``latency``; figures in ``docs/benchmarks.md``, "round 12"):
signed int8 weights **per output channel** on every Attention / MatMul / embedding node of the
encoder, with two parts fp32:

* the heads and the pooler (``/heads/``, ``/pooler/``): per-channel int8 cannot run there (ONNX
  Runtime 1.32 rejects a per-channel zero point on the label-wise heads' batched 3-D MatMul);
* the 16 largest input channels of every attention and FFN output projection
  (``split_outliers``). Those inputs (the GELU output above all) carry a few channels up to 50
  times the rest, on the [CLS] token, and one per-call activation scale that spans them rounds
  every other channel away. Round 8 kept the whole FFN output projection of layers 0 and 1 fp32
  for that, which cost a quarter of the run; splitting off 16 channels keeps them exact for a
  (tokens × 16) by (16 × 384) product.

Against the round-8 form on the same three students: unseen-intent overall −0.60 / +0.09 / +0.10
points against PyTorch (was −0.77 / −0.27 / −0.18), real requests −2 / −1 / −1 of 300 (was
−2 / −4 / −4), at about 0.8× its CPU per prompt (0.71–0.92× in four interleaved probes).
SmoothQuant (scaling the outlier channels into the weights instead) lost 10–19 requests: a row
scaled up dominates its column's weight scale.
Static int8 was not tried: a calibrated per-tensor scale is coarser than the per-call one, and the
outliers are what costs. Reduce-range lost quality.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The ONNX Runtime quantisation the registry stores on promote (``student.int8.onnx``). ``fp32_nodes``
# are regular expressions (``re.search``) over the fused graph's node names (TorchScript scope names).
ONNX_INT8: dict[str, Any] = {
    "method": "dynamic", "weight_type": "QInt8", "per_channel": True, "reduce_range": False,
    "fp32_nodes": [r"^/heads/", r"^/pooler/"],
    # ``outlier_nodes``: where ``split_outliers`` splits: the output projections of attention and of
    # the FFN, whose inputs (the attention context, the GELU output) carry a few channels far larger
    # than the rest.
    "outlier_channels": 16,
    "outlier_nodes": [r"^/encoder/encoder/layer\.\d+/(attention/)?output/dense/MatMul$"],
}

# Prompts whose activations pick the outlier channels, in our own words: a few looks and a few
# explicit adjustments. The outlier channels are a property of the encoder's weights (the same
# channels light up whatever the text), so a short generic set finds them; and as activations are
# still quantised per call, a later prompt with another large channel is not clipped, only rounded
# as coarsely as without the split.
CALIBRATION_PROMPTS = (
    "golden hour", "film noir", "teal and orange blockbuster", "soft pastel wedding", "rainy neon alley",
    "faded summer polaroid", "crisp winter morning", "warm autumn forest", "moody portrait", "vintage",
    "make it brighter", "a bit less contrast", "boost the saturation a lot", "cooler, please",
    "lift the shadows and tame the highlights", "sharper with more vivid greens", "darken it slightly",
    "warm it up but keep the skin natural", "less blue in the sky", "x",
)


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


def split_outliers(model: Any, calibration: Mapping[str, Any], channels: int, patterns: Sequence[str]) -> list[str]:
    """Give each MatMul of ``model`` named by ``patterns`` a small fp32 path for the ``channels`` input
    channels with the largest values (LLM.int8(), Dettmers et al. 2022), in place; returns the names
    of the fp32 MatMuls added, which the quantiser must leave alone.

    ``y = x @ W`` becomes ``(x * keep) @ W_in + x[..., outliers] @ W[outliers]``: the first product,
    quantised as before, no longer sees the outlier channels (``keep`` zeroes them and ``W_in`` has
    their rows zeroed, so neither the per-call activation scale nor a weight column's scale has to
    span them); the second is a (tokens × channels) by (channels × outputs) product in fp32. The
    channels are the largest ``max |x|`` over the real (unmasked) tokens of ``calibration``, the
    graph's inputs for a padded batch of prompts (``CALIBRATION_PROMPTS``).
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from foundation.onnx_graphs import session

    graph = model.graph
    tables = {t.name: t for t in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    names = set(fp32_node_names(graph, patterns))
    targets = [n for n in graph.node if n.name in names and n.op_type == "MatMul"
               and n.input[1] in tables and readers[n.input[1]] == 1 and n.input[0] not in tables]
    if not targets:
        msg = f"no MatMul with its own weight matches {list(patterns)}: no outlier channels to split off"
        raise ValueError(msg)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for node in targets:  # expose each input, to find its largest channels
        probe.graph.output.append(helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(probe, str(Path(tmp) / "probe.onnx"))
        values = session(Path(tmp) / "probe.onnx").run([n.input[0] for n in targets], dict(calibration))
    real = np.asarray(calibration["attention_mask"]).astype(bool)
    added = []
    for node, x in zip(targets, values):
        name, source, output = node.name, node.input[0], node.output[0]
        weight = numpy_helper.to_array(tables[node.input[1]])
        outliers = np.sort(np.argsort(np.abs(x[real]).max(axis=0))[-channels:]).astype(np.int64)
        keep = np.ones(weight.shape[0], dtype=np.float32)
        keep[outliers] = 0
        tables[node.input[1]].CopyFrom(numpy_helper.from_array(weight * keep[:, None], node.input[1]))
        graph.initializer.extend([numpy_helper.from_array(keep, f"{name}/keep"),
                                  numpy_helper.from_array(outliers, f"{name}/outlier_channels"),
                                  numpy_helper.from_array(weight[outliers], f"{name}/outlier_weight")])
        at = list(graph.node).index(node)
        node.input[0], node.output[0] = f"{name}/inliers", f"{name}/inlier_product"
        graph.node.insert(at, helper.make_node("Mul", [source, f"{name}/keep"], [f"{name}/inliers"],
                                               name=f"{name}/inliers"))
        graph.node.insert(at + 2, helper.make_node("Gather", [source, f"{name}/outlier_channels"],
                                                   [f"{name}/outliers"], name=f"{name}/outliers", axis=-1))
        graph.node.insert(at + 3, helper.make_node("MatMul", [f"{name}/outliers", f"{name}/outlier_weight"],
                                                   [f"{name}/outlier_product"], name=f"{name}/outlier_MatMul"))
        graph.node.insert(at + 4, helper.make_node("Add", [f"{name}/inlier_product", f"{name}/outlier_product"],
                                                   [output], name=f"{name}/with_outliers"))
        added.append(f"{name}/outlier_MatMul")
    return added


def onnx_int8(src: Path, dst: Path, *, per_channel: bool | None = None, reduce_range: bool | None = None,
              fp32_nodes: Sequence[str] | None = None, weight_type: str | None = None,
              outlier_channels: int | None = None, outlier_nodes: Sequence[str] | None = None,
              calibration: Mapping[str, Any] | None = None) -> list[str]:
    """Write the dynamic int8 form of the ONNX graph ``src`` to ``dst``; returns the nodes kept fp32.

    Each option left None takes its ``ONNX_INT8`` value (the stored form); ``fp32_nodes`` are name
    patterns (``fp32_node_names``); ``weight_type`` is ``"QInt8"`` or ``"QUInt8"`` (activations are
    always unsigned: ONNX Runtime's dynamic quantiser has no signed activations); ``outlier_channels``
    (0 = none) splits that many input channels of each node named by ``outlier_nodes`` off into fp32
    first (``split_outliers``), and then needs ``calibration``, the graph's inputs for
    ``CALIBRATION_PROMPTS``.
    """
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    per_channel = bool(ONNX_INT8["per_channel"]) if per_channel is None else per_channel
    reduce_range = bool(ONNX_INT8["reduce_range"]) if reduce_range is None else reduce_range
    patterns = list(ONNX_INT8["fp32_nodes"] if fp32_nodes is None else fp32_nodes)
    weight_type = str(ONNX_INT8["weight_type"] if weight_type is None else weight_type)
    weights = getattr(QuantType, weight_type)
    split = int(ONNX_INT8["outlier_channels"]) if outlier_channels is None else outlier_channels
    graph = onnx.load(str(src), load_external_data=False).graph
    keep = fp32_node_names(graph, patterns)  # a pattern that matches nothing fails before any work
    if split:
        if calibration is None:
            msg = "splitting off outlier channels needs calibration inputs: the graph's inputs for CALIBRATION_PROMPTS"
            raise ValueError(msg)
        model = onnx.load(str(src))
        added = split_outliers(model, calibration, split,
                               list(ONNX_INT8["outlier_nodes"] if outlier_nodes is None else outlier_nodes))
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(model, str(Path(tmp) / "split.onnx"))
            return onnx_int8(Path(tmp) / "split.onnx", dst, per_channel=per_channel, reduce_range=reduce_range,
                             fp32_nodes=[*patterns, *(f"^{re.escape(name)}$" for name in added)],
                             weight_type=weight_type, outlier_channels=0)
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

"""Export a MiniLM student to ONNX: one graph from token ids to the edit heads, fp32 and int8.

The graph takes ``input_ids`` and ``attention_mask`` (int64, batch × tokens, both axes dynamic) and
returns the seven head tensors ``structured.decode`` reads, so the ONNX student decodes with the
same code as the PyTorch one. Steps:

1. trace the encoder (eager attention: the SDPA path exports to a pattern ONNX Runtime cannot fuse),
   the student's pooler and the heads with the TorchScript exporter (opset 17);
2. fuse the BERT blocks with ONNX Runtime's transformer optimiser (Attention, SkipLayerNorm,
   BiasGelu, EmbedLayerNorm): ~600 graph nodes become ~60;
2b. fold the token-type embedding into the position embedding (``fold_token_types``): the graph
   never takes token types, so every token adds row 0 of that table, and the nodes that built the
   all-zero ids (shape → slice → expand → gather) ran on every call for a constant;
3. quantise the fused graph (``trainer.quantize.onnx_int8``, the ``ONNX_INT8`` form; the student's
   tokens of ``CALIBRATION_PROMPTS`` pick the outlier channels it splits off into fp32; the nodes it
   keeps fp32 are listed in ``export.json`` as ``int8_fp32_nodes``);
4. check the fp32 graph against PyTorch on fixed prompts (largest head difference ≤ ``PARITY_TOL``)
   and record how often the int8 graph's edits equal the fp32 ones, in ``export.json``.

The registry calls ``export_student`` on promote and stores the files beside the version
(``trainer.registry.store_export``); a student of another kind has no export and serves through
PyTorch.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from foundation.onnx_graphs import fold_token_types, fuse_bert, quiet, session
from trainer.exceptions import TrainerError

INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("tools", "adj", "adj_gate", "sel", "sel_gate", "filter", "intensity")  # structured.build_heads
FP32_FILE = "student.onnx"
INT8_FILE = "student.int8.onnx"
META_FILE = "export.json"
FORMAT = 1
OPSET = 17
PARITY_TOL = 1e-3  # fp32 ONNX vs PyTorch, largest absolute difference of any head output
PARITY_PROMPTS = ("golden hour", "Morocco", "make it moodier", "cool morning in the mountains", "film noir",
                  "lush greens", "faded summer polaroid", "teal and orange blockbuster", "soft pastel wedding",
                  "Tokyo streets at night", "bleach bypass", "warm autumn forest", "a little brighter please",
                  "less saturated, more contrast", "vintage", "x")


class ExportError(TrainerError):
    """The student could not be exported, or its export does not match it."""


def supports(kind: str) -> bool:
    """Whether students of ``kind`` (a manifest's ``student``) have an ONNX export."""
    return kind == "minilm"


def _graph_module(student: Any) -> Any:
    import torch

    class StudentGraph(torch.nn.Module):
        """Tokens → heads: the encoder, then ``MiniLMStudent.heads_on_tokens`` (its pooler and heads)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.pooler, self.heads = student.encoder, student.pooler, student.heads

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, ...]:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            out = student.heads_on_tokens(states, attention_mask)
            return tuple(out[name] for name in OUTPUTS)

    return StudentGraph().eval()


def export_student(student: Any, dst: Path) -> dict[str, Any]:
    """Write ``student.onnx``, ``student.int8.onnx`` and ``export.json`` into ``dst``; returns the meta.

    ``student`` is a loaded MiniLM student; it is moved to the CPU and switched to eager attention
    (load a fresh one for this). Raises ExportError when the fp32 graph disagrees with PyTorch.
    """
    import numpy as np
    import onnxruntime
    import torch

    from trainer.quantize import CALIBRATION_PROMPTS, ONNX_INT8, onnx_int8
    from trainer.students import structured

    if not supports(getattr(student, "name", "")):
        msg = f"students of kind {getattr(student, 'name', '?')!r} have no ONNX export; they serve through PyTorch"
        raise ExportError(msg)
    started = time.monotonic()
    dst.mkdir(parents=True, exist_ok=True)
    student.encoder.to("cpu")
    student.heads.to("cpu")
    student.pooler.to("cpu")
    student.device = "cpu"
    try:
        student.encoder.set_attn_implementation("eager")
    except (AttributeError, ValueError):
        pass  # an older transformers: its default attention is the eager one
    graph = _graph_module(student)
    cfg = student.encoder.config
    tokens = student.tokenizer(list(PARITY_PROMPTS), padding=True, truncation=True, max_length=student.cfg.max_length,
                               return_tensors="pt")
    feeds = {name: tokens[name].to(torch.int64) for name in INPUTS}
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {name: {0: "batch"} for name in OUTPUTS}
    with tempfile.TemporaryDirectory(dir=dst) as tmp:
        raw = Path(tmp) / "raw.onnx"

        def trace() -> None:
            with torch.inference_mode():
                torch.onnx.export(graph, (feeds["input_ids"], feeds["attention_mask"]), str(raw), dynamo=False,
                                  input_names=list(INPUTS), output_names=list(OUTPUTS), dynamic_axes=axes,
                                  opset_version=OPSET, do_constant_folding=True)

        quiet(trace)
        fused, fusions = fuse_bert(raw, cfg.num_attention_heads, cfg.hidden_size)
        folded = fold_token_types(fused.model)
        fused.save_model_to_file(str(dst / FP32_FILE))
    calibration = student.tokenizer(list(CALIBRATION_PROMPTS), padding=True, truncation=True,
                                    max_length=student.cfg.max_length, return_tensors="np")
    calibration = {name: calibration[name].astype(np.int64) for name in INPUTS}
    kept_fp32 = quiet(lambda: onnx_int8(dst / FP32_FILE, dst / INT8_FILE, calibration=calibration))  # ONNX_INT8

    with torch.inference_mode():
        want = [t.numpy() for t in graph(feeds["input_ids"], feeds["attention_mask"])]
    np_feeds = {name: t.numpy() for name, t in feeds.items()}
    got = session(dst / FP32_FILE).run(list(OUTPUTS), np_feeds)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(want, got))
    if not diff <= PARITY_TOL:
        msg = (f"the ONNX graph differs from the PyTorch student by {diff:.2g} (limit {PARITY_TOL}); "
               "it was not stored, and this version serves through PyTorch")
        raise ExportError(msg)
    int8 = session(dst / INT8_FILE).run(list(OUTPUTS), np_feeds)
    fp32_edits = structured.decode(dict(zip(OUTPUTS, got)))
    int8_edits = structured.decode(dict(zip(OUTPUTS, int8)))
    meta = {
        "format": FORMAT, "student": student.name, "opset": OPSET, "inputs": list(INPUTS), "outputs": list(OUTPUTS),
        "max_length": student.cfg.max_length, "tokenizer": "tokenizer.json of the version's encoder/",
        "files": {"fp32": FP32_FILE, "int8": INT8_FILE}, "int8": ONNX_INT8, "int8_fp32_nodes": kept_fp32, "fusions": fusions,
        "token_types_folded": folded,
        "parity": {"prompts": len(PARITY_PROMPTS), "fp32_max_abs_diff": diff,
                   "int8_max_abs_diff": max(float(np.abs(a - b).max()) for a, b in zip(got, int8)),
                   "int8_edits_equal_fp32": sum(a == b for a, b in zip(fp32_edits, int8_edits)) / len(PARITY_PROMPTS)},
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "seconds": round(time.monotonic() - started, 2),
    }
    (dst / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    return meta

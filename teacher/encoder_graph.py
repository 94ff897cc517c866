"""The offline teacher's MiniLM as one ONNX Runtime graph: token ids → unit sentence vectors.

The same maths as the PyTorch path of ``teacher/encoder.py`` (mean pooling over real tokens, then
L2 normalisation, ``mean_pool_unit``), traced once and fused with ONNX Runtime's BERT optimiser
(``foundation/onnx_graphs.py``). On one thread it embeds a single prompt in about a third of eager
PyTorch's time, which halves the teacher's latency per single prompt (``benchmarks/bench_teacher.py``
prints both runtimes side by side; docs/benchmarks.md has the figures).

The graph is exported on first use into ``Settings.model_cache_path``, not the data dir, so a
machine exports it once, whatever data dirs its tests, demos and workers use; its file name is a
hash of the weights' identity and the exporting libraries' versions, so new weights or a new
ONNX Runtime give a new graph. Before it is kept, its vectors are checked against PyTorch's on
fixed texts (``PARITY_TOL``); an export that fails or disagrees is not kept, and the teacher runs
on PyTorch (a warning says why).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the graph's inputs, outputs or maths change
OPSET = 17
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "embedding"
# Unit vectors: the ONNX graph's differ from PyTorch's by ~2e-7 on this project's machines. The
# matcher rounds similarities to 1e-4 (teacher/matcher.py), so a label can differ between the two
# runtimes only where a similarity sits on a rounding boundary.
PARITY_TOL = 1e-5
PARITY_TEXTS = ("golden hour", "x", "make it moodier", "lift it so the room looks less gloomy",
                "ümlaut café, très doux", "teal and orange " * 20, "bring the brightness down just a touch")


def mean_pool_unit(hidden: Any, mask: Any) -> Any:
    """Mean of the token states where ``mask`` is 1, scaled to unit length (torch tensors)."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def graph_path(model_path: str, cache: Path) -> Path:
    """Where the graph of the weights in ``model_path`` lives (exported or not)."""
    from importlib.metadata import version  # not the modules: importing transformers takes a second

    digest = hashlib.sha256(f"{FORMAT}|{version('onnxruntime')}|{version('transformers')}|{version('torch')}".encode())
    # The files' contents, not their paths: another checkout's venv holds the same weights (0.14 s
    # for MiniLM's 90 MB, once per process).
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        with (Path(model_path) / name).open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return cache / f"teacher-encoder-{digest.hexdigest()[:16]}.onnx"


def encoder_graph(model_path: str, cache: Path, max_tokens: int) -> Path | None:
    """The graph for ``model_path``, exported now if the cache has none; None if it cannot be had."""
    try:
        path = graph_path(model_path, cache)
        if path.exists():
            return path
        started = time.monotonic()
        _export(model_path, path, max_tokens)
    except Exception as err:  # noqa: BLE001 - any failure leaves the teacher on PyTorch, which is correct, only slower
        log.warning("the offline teacher's encoder runs on PyTorch: no ONNX graph (%s: %s); set "
                    "TONEFLOW_TEACHER_ENCODER_RUNTIME=torch to skip the attempt", type(err).__name__, err)
        return None
    log.info("exported the offline teacher's encoder to %s in %.1f s (once per machine)", path,
             time.monotonic() - started)
    return path


class ParityError(RuntimeError):
    """The exported graph's vectors differ from PyTorch's."""


def _export(model_path: str, dst: Path, max_tokens: int) -> None:
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from foundation.onnx_graphs import fold_token_types, fuse_bert, load_tokenizer, quiet, session, token_feeds

    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()  # SDPA does not fuse

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return mean_pool_unit(hidden, attention_mask)

    graph = Pooled().eval()
    hf = AutoTokenizer.from_pretrained(model_path)
    tokens = hf(list(PARITY_TEXTS), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    feeds = (tokens["input_ids"].to(torch.int64), tokens["attention_mask"].to(torch.int64))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        raw, fused_path = Path(tmp) / "raw.onnx", Path(tmp) / "fused.onnx"

        def trace() -> None:
            with torch.inference_mode():
                torch.onnx.export(graph, feeds, str(raw), dynamo=False, input_names=list(INPUTS),
                                  output_names=[OUTPUT], opset_version=OPSET, do_constant_folding=True,
                                  dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                                "attention_mask": {0: "batch", 1: "tokens"}, OUTPUT: {0: "batch"}})

        quiet(trace)
        fused, _ = fuse_bert(raw, model.config.num_attention_heads, model.config.hidden_size)
        fold_token_types(fused.model)
        fused.save_model_to_file(str(fused_path))
        # Parity through each path's own tokenizer: the Rust one the teacher feeds the graph with,
        # and the transformers one of the PyTorch path.
        with torch.inference_mode():
            want = graph(*feeds).numpy()
        rust, pad = load_tokenizer(Path(model_path) / "tokenizer.json", max_tokens)
        got = session(fused_path).run([OUTPUT], token_feeds(rust, pad, PARITY_TEXTS))[0]
        diff = float(np.abs(want - got).max())
        if not diff <= PARITY_TOL:
            msg = f"its vectors differ from PyTorch's by {diff:.2g} (limit {PARITY_TOL})"
            raise ParityError(msg)
        os.replace(fused_path, dst)  # atomic: a concurrent exporter's reader sees no half-written graph

"""ONNX Runtime pieces shared by every MiniLM graph: the teacher's sentence encoder
(``teacher/encoder_graph.py``) and the student's export (``trainer/onnx_export.py``).

* ``session``: a CPU session with every graph optimisation and a fixed number of threads;
* ``fuse_bert``: ONNX Runtime's transformer optimiser over a traced BERT graph (Attention,
  SkipLayerNorm, BiasGelu, EmbedLayerNorm): ~600 graph nodes become ~60;
* ``fold_token_types``: the token-type embedding folded into the position table;
* ``load_tokenizer`` / ``token_feeds``: the Rust tokenizer called directly, and the graph's inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def session(path: Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session with every graph optimisation, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quiet(fn: Callable[[], T]) -> T:
    """``fn()`` with the exporter's and the optimiser's warnings and notices silenced."""
    import warnings

    loggers = [logging.getLogger(n) for n in ("", "onnxruntime", "onnx_model", "onnx_model_bert", "fusion_base", "fusion_utils")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter deprecation and tracer notices
            return fn()
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def fuse_bert(raw: Path, num_heads: int, hidden_size: int) -> tuple[Any, dict[str, int]]:
    """(the fused model, its fused-operator counts) of the traced BERT graph ``raw``."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = quiet(lambda: optimize_model(str(raw), model_type="bert", num_heads=num_heads,
                                         hidden_size=hidden_size, opt_level=0))
    return fused, {k: v for k, v in fused.get_fused_operator_statistics().items() if v}


def fold_token_types(model: Any) -> bool:
    """Add ``token_type_embeddings[0]`` to the position table of the fused ``EmbedLayerNormalization``
    and drop its segment inputs and the nodes only they read; returns whether it did.

    Same maths: HF BERT feeds all-zero token types when none are given (these graphs have no such
    input), and the embedding sum is ``word[id] + position[i] + token_type[0]`` before the
    LayerNorm either way. 96 → 80 nodes in the student's int8 graph; the CPU per single-prompt run
    moved by −2% and +3% in two call-by-call interleaved runs on the shared box, i.e. below what it
    can resolve (``docs/benchmarks.md``): the cost is in the matrix products. Each caller's parity
    check against PyTorch covers it.
    """
    from onnx import numpy_helper

    graph = model.graph
    nodes = [n for n in graph.node if n.op_type == "EmbedLayerNormalization"]
    if len(nodes) != 1 or len(nodes[0].input) < 5 or not nodes[0].input[1] or not nodes[0].input[4]:
        return False
    emb = nodes[0]
    if emb.input[1] in {i.name for i in graph.input}:
        return False  # token types are an input: they may be non-zero
    tables = {t.name: t for t in graph.initializer}
    position, segment = tables.get(emb.input[3]), tables.get(emb.input[4])
    readers = sum(i == emb.input[3] for n in graph.node for i in n.input)
    if position is None or segment is None or readers != 1:
        return False
    pos, seg = numpy_helper.to_array(position), numpy_helper.to_array(segment)
    position.CopyFrom(numpy_helper.from_array((pos + seg[0]).astype(pos.dtype), position.name))
    emb.input[1] = emb.input[4] = ""
    outputs = {o.name for o in graph.output}
    while True:  # the now-unread nodes, then whatever only fed them
        read = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {i for n in graph.node for i in n.input}
    for table in [t for t in graph.initializer if t.name not in read]:
        graph.initializer.remove(table)
    return True


def load_tokenizer(path: Path, max_length: int) -> tuple[Any, int]:
    """The Rust tokenizer in ``path`` truncating at ``max_length`` and padding a batch to its longest
    prompt (so a lone ``encode`` is not padded), and its ``[PAD]`` id."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    pad = tokenizer.token_to_id("[PAD]")
    pad_id = 0 if pad is None else pad
    tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")  # replaces the file's fixed-length padding (128)
    return tokenizer, pad_id


def token_feeds(tokenizer: Any, pad_id: int, prompts: Sequence[str]) -> dict[str, Any]:
    """The graph's inputs for ``prompts``: token ids and mask (int64), right-padded with ``pad_id`` to
    the longest prompt, i.e. what ``encode_batch`` returns with longest-padding on, built from one
    ``encode`` per prompt; ``tokenizer`` comes from ``load_tokenizer``.

    Why not ``encode_batch``: it releases the GIL for the ~10 µs a short prompt takes, and in
    ``toneflow serve`` this thread must then take the GIL back from the busy event loop (up to the
    interpreter's 5 ms switch interval, longer when the loop's thread is preempted) before the
    forward pass, which already costs one such wait. ``encode`` keeps the GIL.
    """
    import numpy as np

    encodings = [tokenizer.encode(p) for p in prompts]
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        ids[row, :len(e.ids)] = e.ids
        mask[row, :len(e.ids)] = e.attention_mask
    return {"input_ids": ids, "attention_mask": mask}

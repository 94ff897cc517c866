"""``foundation.onnx_graphs.token_feeds`` (one ``encode`` per prompt, padded by hand) gives the graph the
same ids and mask as the transformers tokenizer the PyTorch student uses, on prompts of mixed
lengths, one truncated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from foundation.onnx_graphs import load_tokenizer, token_feeds
from trainer.students.minilm import MiniLMStudent

PROMPTS = ["golden hour", "x", "Tokyo streets at night", "ümlaut café, très doux", "teal and orange " * 20, "Morocco"]


def test_token_feeds_equal_the_transformers_tokenizer(tmp_path: Path) -> None:
    student = MiniLMStudent()
    student.save(tmp_path / "model")
    tokenizer, pad = load_tokenizer(tmp_path / "model" / "encoder" / "tokenizer.json", student.cfg.max_length)
    assert pad == student.tokenizer.pad_token_id
    got = token_feeds(tokenizer, pad, PROMPTS)
    want = student.tokenizer(PROMPTS, padding=True, truncation=True, max_length=student.cfg.max_length)
    assert got["input_ids"].dtype == np.int64 and got["attention_mask"].dtype == np.int64
    assert got["input_ids"].tolist() == want["input_ids"]
    assert got["attention_mask"].tolist() == want["attention_mask"]
    assert got["input_ids"].shape == (len(PROMPTS), student.cfg.max_length)  # the long one was truncated
    assert token_feeds(tokenizer, pad, ["x"])["input_ids"].shape == (1, 3)  # [CLS] x [SEP], no padding alone

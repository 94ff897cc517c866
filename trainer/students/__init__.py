"""Students: one interface (``base.Student``), three kinds. Classes load lazily (torch is heavy)."""

from __future__ import annotations

import importlib
from typing import Any, Literal

StudentKind = Literal["minilm", "seq2seq", "causal"]
STUDENT_KINDS: tuple[StudentKind, ...] = ("minilm", "seq2seq", "causal")

_CLASSES = {
    "minilm": ("trainer.students.minilm", "MiniLMStudent"),
    "seq2seq": ("trainer.students.generative", "Seq2SeqStudent"),
    "causal": ("trainer.students.generative", "CausalStudent"),
}


def student_class(kind: str) -> Any:
    """The class for a student kind (as recorded in a model's manifest)."""
    if kind not in _CLASSES:
        from trainer.exceptions import TrainerError

        msg = f"unknown student {kind!r}; choose one of {', '.join(STUDENT_KINDS)}"
        raise TrainerError(msg)
    module, name = _CLASSES[kind]
    return getattr(importlib.import_module(module), name)

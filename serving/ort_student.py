"""The MiniLM student in ONNX Runtime: the registry's export (``trainer.onnx_export``), one CPU thread.

``OrtStudent.predict`` = tokenise with the version's own ``tokenizer.json`` (the Rust tokenizer,
called directly: the transformers wrapper costs more than the int8 forward pass on a short prompt;
``foundation.onnx_graphs.token_feeds`` says why one ``encode`` per prompt)
→ one ``session.run`` → ``structured.decode``, the same decoding as the PyTorch student, so every
edit is valid by construction. ``load_export`` returns None for a version without an export, and
the caller serves it through PyTorch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from foundation.onnx_graphs import load_tokenizer, token_feeds
from foundation.settings import Settings
from schemas.edit import Edit

log = logging.getLogger(__name__)

_BATCH = 128  # the PyTorch student's predict batch: long files go through in slices this size


class OrtStudent:
    """Quacks like ``trainer.students.base.Student`` for prediction (``name``, ``version``, ``predict``)."""

    name = "minilm"
    # ``session.run`` and the Rust tokenizer's ``encode`` may be called from several threads at
    # once (serving.batching runs one forward pass per core); nothing here is mutated after __init__.
    thread_safe = True

    def __init__(self, model_dir: Path, export_dir: Path, *, int8: bool = True, threads: int = 1) -> None:
        from foundation.onnx_graphs import session
        from trainer.onnx_export import INPUTS, META_FILE, OUTPUTS

        meta = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))
        self.version: str | None = None
        self.runtime = f"onnx-{'int8' if int8 else 'fp32'}"
        self.session = session(export_dir / meta["files"]["int8" if int8 else "fp32"], threads)
        self.tokenizer, self._pad = load_tokenizer(model_dir / "encoder" / "tokenizer.json", int(meta["max_length"]))
        self._inputs, self._outputs = INPUTS, list(OUTPUTS)

    def _run(self, prompts: Sequence[str]) -> list[Edit]:
        from trainer.students.structured import decode

        heads = self.session.run(self._outputs, token_feeds(self.tokenizer, self._pad, prompts))
        return decode(dict(zip(self._outputs, heads)))

    def predict(self, prompts: Sequence[str]) -> list[Edit]:
        out: list[Edit] = []
        for i in range(0, len(prompts), _BATCH):
            out.extend(self._run(prompts[i:i + _BATCH]))
        return out

    def quantize_int8(self) -> bool:
        return self.runtime == "onnx-int8"  # the int8 graph is chosen at load time


def load_export(settings: Settings, version: str, *, int8: bool, threads: int = 1) -> OrtStudent | None:
    """``version`` in ONNX Runtime when it has a verified export and the runtime setting allows it, else None.

    The version's own files are verified by the caller (they hold the tokenizer); a damaged export
    raises CorruptModel.
    """
    from trainer import registry

    if settings.student_runtime != "onnx":
        return None
    export = registry.verified_export(settings, version)
    if export is None:
        return None
    student = OrtStudent(registry.model_path(settings, version), export, int8=int8, threads=threads)
    student.version = version
    return student

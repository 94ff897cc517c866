"""The offline teacher's encoder as an ONNX Runtime graph (teacher/encoder_graph.py): the same vectors
and the same labels as the PyTorch path, exported once per cache, and PyTorch when it cannot be had."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from foundation.text_encoder import resolve_model_path
from teacher.encoder import MAX_TOKENS, Encoder
from teacher.encoder_graph import PARITY_TOL, encoder_graph, graph_path
from teacher.offline import OfflineTeacher
from tests.test_teacher_offline import CASES

TEXTS = ["golden hour", "x", "", "dim it, please.", "ümlaut café, très doux", "teal and orange " * 30,
         "make it look like an old polaroid", "LOUDER COLOURS!!!", "warm 🌅 sunset", "push contrast up by 40 percent"]


@pytest.fixture(scope="module")
def both() -> tuple[Encoder, Encoder]:
    onnx, torch = Encoder(runtime="onnx"), Encoder(runtime="torch")
    onnx.encode(["warm up"]), torch.encode(["warm up"])
    return onnx, torch


def test_graph_vectors_match_pytorch(both: tuple[Encoder, Encoder]) -> None:
    onnx, torch = both
    assert (onnx.runtime, torch.runtime) == ("onnx", "torch")  # the graph was had, not silently skipped
    a, b = onnx.encode(TEXTS), torch.encode(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(np.abs(a - b).max()) <= PARITY_TOL
    # one at a time (no padding) and in one batch (padded to the longest) give the same vectors
    single = np.concatenate([onnx.encode([t]) for t in TEXTS])
    assert float(np.abs(single - a).max()) <= PARITY_TOL
    assert onnx.vocabulary() == torch.vocabulary()


def test_teacher_labels_are_the_same_on_either_runtime(both: tuple[Encoder, Encoder], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import teacher.offline as offline

    prompts = [p for p, _ in CASES] + TEXTS
    labels = {}
    for encoder in both:
        # the library's phrase vectors too come from this runtime: no memo, no disk cache shared
        monkeypatch.setattr(offline, "_PHRASE_MEMO", {})
        teacher = OfflineTeacher(cache_dir=tmp_path / str(encoder.runtime), encoder=encoder)
        labels[encoder.runtime] = [lab.edit for lab in teacher.label_sync(prompts)]
    changed = [(p, a, b) for p, a, b in zip(prompts, labels["onnx"], labels["torch"], strict=True) if a != b]
    assert not changed, changed


def test_exported_once_per_cache_and_reused(tmp_path: Path) -> None:
    model = resolve_model_path()
    first = encoder_graph(model, tmp_path, MAX_TOKENS)
    assert first is not None and first == graph_path(model, tmp_path) and first.exists()
    stamp = first.stat().st_mtime_ns
    assert encoder_graph(model, tmp_path, MAX_TOKENS) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary files left behind


def test_no_graph_leaves_the_teacher_on_pytorch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="teacher.encoder_graph"):
        assert encoder_graph(resolve_model_path(), blocked, MAX_TOKENS) is None
    assert "runs on PyTorch" in caplog.text and "TONEFLOW_TEACHER_ENCODER_RUNTIME=torch" in caplog.text

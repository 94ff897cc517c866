"""Registry: immutable versions, gated atomic promote, rollback, crash consistency (docs/reliability.md §7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.settings import Settings
from trainer import registry
from trainer.exceptions import GateRejected, ModelNotFound, NoCurrentModel, TrainerError


def _version(settings: Settings, payload: str = "w") -> str:
    staged = registry.stage(settings)
    (staged / "weights.bin").write_text(payload)
    (staged / "student.json").write_text(json.dumps({"student": "minilm"}))
    return registry.commit(settings, staged, {"student": "minilm", "snapshot": None, "parent": None,
                                              "metrics": {"overall": 0.5}})


def _eval(settings: Settings, version: str, overall: float, test_set: str = "T") -> None:
    registry.record_eval(settings, version, test_set, {"overall": overall, "n": 10})


def test_no_current_model_message(settings: Settings) -> None:
    with pytest.raises(NoCurrentModel, match=r"no current model: run `toneflow train` first"):
        registry.load_student(settings)


def test_versions_are_numbered_immutable_and_hashed(settings: Settings) -> None:
    v1, v2 = _version(settings, "a"), _version(settings, "b")
    assert (v1, v2) == ("v000001", "v000002")
    m = registry.manifest(settings, v2)
    assert set(m["files"]) == {"weights.bin", "student.json"}
    registry.verify(settings, v2)
    # a half-written version (crash before rename) is invisible, and gc removes it once stale
    (registry.models_dir(settings) / ".tmp-deadbeef").mkdir()
    assert registry.version_names(settings) == [v1, v2]
    assert registry.gc(settings, older_than_s=-1) == [".tmp-deadbeef"]
    with pytest.raises(ModelNotFound):
        registry.resolve(settings, "v000009")
    assert registry.resolve(settings, "2") == v2


def test_gate_promote_and_rollback(settings: Settings) -> None:
    v1, v2, v3 = (_version(settings, x) for x in "abc")
    assert registry.promote(settings, v1)["promoted"]  # first promotion: nothing to beat
    _eval(settings, v1, 0.80)
    _eval(settings, v2, 0.70)
    with pytest.raises(GateRejected, match="not promoting v000002"):
        registry.promote(settings, v2, test_set="T")
    assert registry.resolve(settings) == v1
    # margin lets a slightly worse model through; equal is "not worse"
    assert registry.promote(settings, v2, test_set="T", margin=0.15)["promoted"]
    _eval(settings, v3, 0.70)
    assert registry.promote(settings, v3, test_set="T")["promoted"]
    with pytest.raises(TrainerError, match="has not been evaluated"):
        registry.promote(settings, v1, test_set="OTHER")
    assert registry.rollback(settings) == {"version": v2, "previous": v3}
    assert registry.rollback(settings) == {"version": v1, "previous": v2}
    with pytest.raises(TrainerError, match="nothing to roll back"):
        registry.rollback(settings)
    assert registry.rollback(settings, to=v3)["version"] == v3
    infos = registry.list_models(settings)
    assert [m.version for m in infos if m.current] == [v3]


def test_crash_before_pointer_replace_keeps_old_current(settings: Settings, tmp_path: Path) -> None:
    v1, v2 = _version(settings, "a"), _version(settings, "b")
    registry.promote(settings, v1)
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_dir),
           "TONEFLOW_FAILPOINTS": "registry.current.before_replace"}
    proc = subprocess.run([sys.executable, "-m", "toneflow", "models", "promote", v2, "--force"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    assert registry.read_current(settings)["version"] == v1  # old pointer, complete and valid
    assert registry.promote(settings, v2, force=True)["promoted"]
    assert registry.resolve(settings) == v2


def test_crash_before_commit_rename_leaves_no_version(settings: Settings) -> None:
    code = ("from trainer import registry; from foundation.settings import get_settings; s = get_settings(); "
            "p = registry.stage(s); (p / 'w').write_text('x'); registry.commit(s, p, {'student': 'minilm'})")
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_dir),
           "TONEFLOW_FAILPOINTS": "registry.commit.before_rename"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    assert registry.version_names(settings) == []
    assert _version(settings) == "v000001"


def test_corrupt_files_are_detected(settings: Settings) -> None:
    v1 = _version(settings, "a")
    path = registry.model_path(settings, v1) / "weights.bin"
    path.write_text("tampered")
    with pytest.raises(registry.CorruptModel, match="damaged"):
        registry.verify(settings, v1)

"""The layer contract and the no-circles check catch what they are there to catch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("foundation", "schemas", "teacher", "warehouse", "editor", "streams", "trainer", "serving", "console", "toneflow")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "repo"
    dst.mkdir()
    for name in (*PACKAGES, "scripts"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def _run(repo: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (make install)")
    return _copy(tmp_path)


def test_layers_hold_and_an_upward_import_breaks_them(repo: Path) -> None:
    assert _run(repo, str(LINT_IMPORTS)).returncode == 0
    with (repo / "schemas" / "text.py").open("a") as fh:
        fh.write("\nfrom trainer import registry  # an upward import: contracts must not know the trainer\n")
    broken = _run(repo, str(LINT_IMPORTS), "--no-cache")
    assert broken.returncode != 0
    assert "schemas.text -> trainer.registry" in broken.stdout


def test_module_circles_are_found(repo: Path) -> None:
    assert _run(repo, sys.executable, "scripts/check_cycles.py").returncode == 0
    with (repo / "foundation" / "failpoints.py").open("a") as fh:
        fh.write("\nfrom foundation import cli  # noqa\n")
    with (repo / "foundation" / "cli.py").open("a") as fh:
        fh.write("\nfrom foundation import failpoints  # noqa\n")
    circled = _run(repo, sys.executable, "scripts/check_cycles.py")
    assert circled.returncode == 1
    assert "foundation.cli <-> foundation.failpoints" in circled.stdout

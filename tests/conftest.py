"""Shared fixtures. Every test runs with its own data dir; one embedded broker serves the session."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Set before any toneflow import reads settings: nothing a test does touches ./data.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="toneflow-tests-"))
os.environ["TONEFLOW_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for _name in list(os.environ):
    # A developer's real-service settings must not leak into the suite.
    if _name.startswith("TONEFLOW_") and _name not in ("TONEFLOW_DATA_DIR", "TONEFLOW_KAFKA"):
        del os.environ[_name]

from foundation.settings import Settings, get_settings  # noqa: E402


def _embedded_broker(root: Path) -> Iterator[Settings]:
    """Settings for a data dir under ``root`` with its own embedded broker, stopped even on failure.

    Tests pass these settings explicitly (or TONEFLOW_KAFKA_BOOTSTRAP to subprocesses); the process
    environment stays broker-free so other tests see fresh-machine defaults.
    """
    from foundation import broker
    from schemas.events import TOPICS

    own = Settings(data_dir=root / "broker")
    state = broker.start(own, TOPICS)
    try:
        yield Settings(data_dir=root / "data", kafka_bootstrap=state.bootstrap)
    finally:
        broker.stop(own)


@pytest.fixture(scope="session", autouse=True)
def _teacher_encoder_graph() -> None:
    """The offline teacher's ONNX encoder (teacher/encoder_graph.py) exported before any test's worker
    subprocess needs it: on a machine that has none yet, that worker would spend its start-up exporting."""
    from foundation.text_encoder import resolve_model_path
    from teacher.encoder import MAX_TOKENS
    from teacher.encoder_graph import encoder_graph

    encoder_graph(resolve_model_path(), get_settings().model_cache_path, MAX_TOKENS)


@pytest.fixture(scope="session")
def broker_settings() -> Iterator[Settings]:
    """One embedded Tansu broker for the whole session."""
    yield from _embedded_broker(_SESSION_DIR)


@pytest.fixture
def fresh_broker_settings(tmp_path: Path) -> Iterator[Settings]:
    """A broker of this test's own: its topics and consumer groups start empty."""
    yield from _embedded_broker(tmp_path)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with a fresh data dir for this test (no broker)."""
    monkeypatch.setenv("TONEFLOW_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for per-test topics and consumer groups."""
    return uuid.uuid4().hex[:10]

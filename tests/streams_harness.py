"""Helpers for tests that run the real worker against a real (embedded) broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from foundation.settings import Settings
from warehouse.catalog import connect


def start_worker(settings: Settings, log: Path, failpoints: str = "", module: str = "toneflow") -> subprocess.Popen:
    """``toneflow worker`` in a subprocess (``module`` swaps in a test wrapper such as
    ``tests.slow_seek_worker``)."""
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_dir), "TONEFLOW_KAFKA_BOOTSTRAP":
           settings.kafka_bootstrap, "TONEFLOW_FAILPOINTS": failpoints, "TONEFLOW_TRIGGER_CHECK_S": "1"}
    args = ["worker"] if module == "toneflow" else []
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdout=open(log, "ab"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def count(settings: Settings, sql: str) -> int:
    try:
        return int(connect(settings).execute(sql).fetchone()[0])
    except Exception:  # noqa: BLE001 - a file being replaced mid-read: ask again
        return -1


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    msg = f"timed out after {timeout:.0f} s waiting for {what}"
    raise AssertionError(msg)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

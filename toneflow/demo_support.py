"""What the demo's steps share: the plan (sizes), its child processes, progress lines, waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from foundation.errors import ToneflowError

T = TypeVar("T")


@dataclass(frozen=True)
class DemoPlan:
    teacher_projects: int = 3600
    ab_projects: int = 1600
    retrain_threshold: int = 1200
    # Fit budget. 3 min on both cores gives ~1,400-1,500 steps on the demo's data, about what 5 min
    # on one core gave, and keeps a fresh clone's `make demo` near 7.5 min with the install
    # (docs/benchmarks.md, "Issue 12, round 14").
    train_minutes: float = 3.0
    student_share: float = 0.4
    seed: int = 0


class Processes:
    """Child processes started in their own process groups, stopped together (children too)."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen([sys.executable, "-m", "toneflow", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the group: any process the child started too
                    proc.wait(20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.poll()
        self.procs.clear()


def say(step: int, total: int, text: str) -> None:
    print(f"\n[{step}/{total}] {text}", flush=True)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, procs: Processes | None = None,
             poll: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if procs is not None:
            for name, proc in procs.procs.items():
                if proc.poll() is not None and proc.returncode != 0:
                    msg = f"{name} exited with code {proc.returncode} while waiting for {what}; see its log"
                    raise ToneflowError(msg)
        time.sleep(poll)
    msg = f"timed out after {timeout:.0f} s waiting for {what}"
    raise ToneflowError(msg)

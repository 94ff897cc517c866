"""``toneflow demo`` (what ``make demo`` runs): the whole loop on a fresh machine, no network.

  1. an embedded broker and the stream worker (labeler, join, sinks, retrain trigger);
  2. teacher-served app traffic from the simulator → labels → accepted examples in the warehouse;
  3. the retrain trigger fires and launches ``toneflow train --incremental``: the first student is
     trained, evaluated, and promoted by the offline gate;
  4. ``toneflow serve`` starts; the student gets a share of traffic as an A/B arm next to the
     teacher; simulated users call the API and export (or not) what they are served;
  5. the online gate (``toneflow rollout step``) promotes the student to all traffic or rolls it back;
  6. a report: events, DLQ, training runs, the paper-style metrics table, completion rate per
     variant with intervals, teacher-vs-student latency, and a contact sheet of a few prompts.

Everything lives in ``<data_dir>/demo`` (replaced on each run). Every process it starts is stopped
on the way out, Ctrl-C included.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from toneflow import broker
from toneflow.errors import ToneflowError
from toneflow.settings import Settings


@dataclass(frozen=True)
class DemoPlan:
    teacher_projects: int = 3600
    ab_projects: int = 1600
    retrain_threshold: int = 1200
    train_minutes: float = 5.0
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
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the group: a training run the worker launched too
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


def wait_for(check, timeout: float, what: str, procs: Processes | None = None, poll: float = 1.0):  # type: ignore[no-untyped-def]
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


def run(settings: Settings, plan: DemoPlan | None = None) -> int:
    from toneflow.demo_steps import Demo

    plan = plan or DemoPlan()
    root = settings.data_path / "demo"
    if root.exists():
        old = Settings(data_dir=root / "broker")
        broker.stop(old)
        shutil.rmtree(root)
    root.mkdir(parents=True)
    own = Settings(data_dir=root / "broker")
    procs = Processes()
    started = time.monotonic()
    try:
        state = broker.start(own)
        demo = Demo(root=root, bootstrap=state.bootstrap, plan=plan, procs=procs)
        code = demo.run()
        print(f"\ndemo finished in {(time.monotonic() - started) / 60:.1f} min; everything is in {root}")
        return code
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server, the worker and the broker", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        broker.stop(own)

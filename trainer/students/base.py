"""The one interface every student implements, and the training loop they share.

``fit(train, val)`` trains (or continues training) and returns a FitReport; ``predict(prompts)``
returns one schema-valid Edit per prompt; ``save(dir)`` writes weights plus a human-readable
``student.json``; ``load(dir)`` is a classmethod that reads what ``save`` wrote.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from schemas.edit import Edit
from trainer.data import Example


@dataclass
class FitConfig:
    """Optimisation knobs shared by every student (per-field help is in ``trainer.config``)."""

    epochs: int = 12
    batch_size: int = 32
    lr: float = 5e-4
    head_lr: float = 3e-3
    patience: int = 3
    max_steps: int = 0  # 0 = no cap; tests use a handful
    # 0 = no time budget; else the whole fit (every phase, its last validation included) ends inside it
    max_minutes: float = 0.0
    seed: int = 0
    progress: bool = True


@dataclass
class FitReport:
    steps: int = 0
    epochs: int = 0
    seconds: float = 0.0
    best_val: float = 0.0
    best_epoch: int = 0
    stopped_early: bool = False
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    val_scores: list[float] = field(default_factory=list)  # validation overall per epoch
    notes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds per phase, in the order they ran

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add_phase(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def phase_line(self) -> str:
        """"cache 41 s, heads 63 s, lora 480 s": where a fit's minutes went."""
        return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.phases.items())


class Budget:
    """One wall-clock budget for every phase of a fit: each phase gets a deadline inside it.

    ``max_minutes`` 0 means no budget (every deadline is None). ``share(f)`` is the deadline of a
    phase starting now that may use at most ``f`` of the whole budget (phase 1 of the MiniLM
    student), never past its end; ``deadline`` is the budget's end, so whatever an earlier phase
    did not use goes to the next.
    """

    def __init__(self, max_minutes: float) -> None:
        self.start = time.monotonic()
        self.seconds = max(0.0, max_minutes) * 60

    @property
    def deadline(self) -> float | None:
        return self.start + self.seconds if self.seconds else None

    def share(self, fraction: float) -> float | None:
        if not self.seconds:
            return None
        return min(self.start + self.seconds, time.monotonic() + fraction * self.seconds)

    def left(self) -> float | None:
        return None if not self.seconds else max(0.0, self.start + self.seconds - time.monotonic())


@runtime_checkable
class Student(Protocol):
    name: str
    version: str | None

    def fit(self, train: Sequence[Example], val: Sequence[Example]) -> FitReport: ...

    def predict(self, prompts: Sequence[str]) -> list[Edit]: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Student: ...


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def busy_cores(window_s: float = 0.2) -> float | None:
    """How many cores other work kept busy over the next ``window_s`` (``/proc/stat``), or None
    where the kernel has no such file. This process sleeps while it measures, so it is not counted.
    """
    def ticks() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                fields = [int(x) for x in fh.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal (guest time is already inside user)
        return sum(fields), fields[3] + fields[4]

    before = ticks()
    if before is None:
        return None
    time.sleep(window_s)
    after = ticks()
    if after is None or after[0] <= before[0]:
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    return (total - idle) / total * (os.cpu_count() or 1)


def auto_threads() -> int:
    """The CPU cores not busy with other work right now, at least 1.

    Why not all: torch's OpenMP threads spin-wait for each other, so on a shared box an
    oversubscribed process crawls. Measured on this 2-core machine at load ~6: one LoRA step on
    MiniLM took 0.7 s with 1 thread and 6.5 s with 2; tiny-model tests went from 105 s to 2 s.
    Why "right now" (``busy_cores``) and not the 1-minute load average: the average still counts
    work that has just finished. `make demo` starts its first fit seconds after the traffic phase
    and `make install`, when the average still reads above 1 on an idle 2-core box, which gives one
    thread (docs/benchmarks.md, "Issue 12, round 14"). The load average is the fallback where
    ``/proc/stat`` is absent.
    """
    cores = os.cpu_count() or 1
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def set_threads(threads: int = 0) -> int:
    """Use ``threads`` CPU threads (0 = ``auto_threads()``); interop threads stay at 1. Returns the count."""
    import torch

    threads = threads or auto_threads()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process: torch allows it only before parallel work starts
    return threads


def batches(n: int, size: int, rng: random.Random | None) -> list[list[int]]:
    order = list(range(n))
    if rng is not None:
        rng.shuffle(order)
    return [order[i:i + size] for i in range(0, n, size)]


# A training step (forward, backward, update) costs about 3 forward passes: the estimate of a first
# validation, before one was timed. Set from the capped acceptance run in docs/benchmarks.md
# ("Training", round 7): counting a validation batch as a whole step, phase 2 stopped 70 s early.
VAL_STEP_RATIO = 3.0


def train_loop(*, n_train: int, cfg: FitConfig, step: Callable[[list[int]], float],
               validate: Callable[[], float], snapshot: Callable[[], Any], restore: Callable[[Any], None],
               desc: str, report: FitReport | None = None, deadline: float | None = None,
               n_val: int = 0) -> FitReport:
    """Epochs of ``step(batch_indices) -> loss`` with validation, early stopping and a best-model restore.

    Shows a tqdm bar per run (step count, loss, ETA). ``validate`` returns a higher-is-better
    score; after ``cfg.patience`` epochs without improvement the loop stops and the best
    weights (``snapshot``/``restore``) are put back, so the result is never worse than the best
    epoch seen on validation.

    Time: the loop ends by ``deadline`` (a ``time.monotonic()`` value; ``Budget`` hands them out)
    or ``cfg.max_minutes`` from its start, whichever is sooner, **its last validation included**:
    before each step it checks that one more step and one validation still fit (both estimated
    from what they took so far; before the first validation, as ``n_val`` rows at the cost of a
    training step per batch over ``VAL_STEP_RATIO``: a validation batch is a forward pass only).
    So the budget holds by construction, and a slower (shared) CPU gives fewer steps rather than a
    longer run.
    """
    from tqdm.auto import tqdm

    report = report or FitReport()
    rng = random.Random(cfg.seed)
    per_epoch = math.ceil(n_train / cfg.batch_size)
    total = per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    best, best_state, bad = -1.0, None, 0
    start = time.monotonic()
    ends = [t for t in (deadline, start + cfg.max_minutes * 60 if cfg.max_minutes else None) if t is not None]
    end = min(ends) if ends else None
    recent: deque[float] = deque(maxlen=16)  # the last steps' durations: their slowest is the next one's estimate
    val_s: float | None = None  # the last validation's duration

    def out_of_time() -> bool:
        if end is None:
            return False
        step_s = max(recent, default=0.0)
        validation = val_s if val_s is not None else step_s * math.ceil(n_val / cfg.batch_size) / VAL_STEP_RATIO
        return time.monotonic() + step_s + validation > end

    bar = tqdm(total=total, desc=desc, unit="step", disable=not cfg.progress, dynamic_ncols=True)
    steps = 0
    timed_out = False
    for epoch in range(1, cfg.epochs + 1):
        losses = []
        for idx in batches(n_train, cfg.batch_size, rng):
            t = time.monotonic()
            losses.append(step(idx))
            recent.append(time.monotonic() - t)
            steps += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{losses[-1]:.4f}")
            if cfg.max_steps and steps >= cfg.max_steps:
                break
            if out_of_time():
                timed_out = True
                break
        report.losses.append(sum(losses) / max(len(losses), 1))
        t = time.monotonic()
        val = validate()
        val_s = time.monotonic() - t
        report.val_scores.append(val)
        bar.set_postfix(epoch=epoch, loss=f"{report.losses[-1]:.4f}", val=f"{val:.4f}")
        report.epochs += 1
        if val > best:
            best, best_state, bad, report.best_epoch = val, snapshot(), 0, report.epochs
        else:
            bad += 1
        if cfg.max_steps and steps >= cfg.max_steps:
            break
        if bad >= cfg.patience:
            report.stopped_early = True
            break
        if timed_out or (epoch < cfg.epochs and out_of_time()):
            report.notes.append(f"{desc}: stopped at its time budget in epoch {epoch} "
                                f"({time.monotonic() - start:.0f} s)")
            break
    bar.close()
    if best_state is not None:
        restore(best_state)
    report.steps += steps
    report.seconds += time.monotonic() - start
    report.add_phase(desc, time.monotonic() - start)
    report.best_val = max(report.best_val, best)
    return report

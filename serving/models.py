"""Hot-reloading students: the server answers from whatever the registry and the plan say *now*.

``ModelHolder`` keeps one loaded student per registry name the traffic plan uses ("current" or a
pinned version). ``Reloader`` is a daemon thread that, every ``serve_reload_interval_s``:

1. re-reads the traffic plan (a few hundred bytes) and publishes it if it changed;
2. resolves each student name to a version (``current.json`` is a few bytes);
3. for a name whose version moved, loads the new version *in this thread* (hash-verified), then
   swaps the reference in one assignment.

Guarantees: a request holds a reference to the student it started with, so in-flight requests
finish on the old model while new ones get the new one; no request waits for a load; a failed
load (damaged files, missing version, bad plan) is logged and counted and the old model/plan keeps
serving. Models no longer named by the plan are dropped so memory does not grow with promotions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from foundation.settings import Settings
from serving.ab import TrafficPlan, load_plan
from serving.exceptions import NoStudentLoaded
from serving.server import refreeze

if TYPE_CHECKING:
    from trainer.students.base import Student

log = logging.getLogger(__name__)

Loader = Callable[[Settings, str], "Student"]


def load_version(settings: Settings, version: str) -> Student:
    """Load one registry version, verified against its manifest, without the registry's process cache
    (a long-running server would otherwise keep every version it ever served in memory).

    A version with an ONNX export runs in ONNX Runtime (int8 unless TONEFLOW_SERVE_QUANTIZE=false);
    one without (or with a damaged export, logged) runs in PyTorch, dynamically int8-quantised likewise.
    """
    import os

    from serving.ort_student import load_export
    from trainer import registry
    from trainer.exceptions import CorruptModel
    from trainer.students import student_class

    registry.verify(settings, version)
    fallback: str | None = None  # why a version with an export serves through PyTorch (/healthz says it)
    try:
        fast = load_export(settings, version, int8=settings.serve_quantize,
                           threads=settings.serve_torch_threads or os.cpu_count() or 1)
    except CorruptModel as err:
        log.error("%s; serving %s through PyTorch", err, version)
        fast, fallback = None, f"damaged ONNX export: {err}"
    except Exception as err:  # noqa: BLE001 - an export this ONNX Runtime cannot run must not block the version
        log.error("cannot run the ONNX export of %s (%s: %s); serving it through PyTorch", version,
                  type(err).__name__, err)
        fast, fallback = None, f"ONNX Runtime cannot run the export: {type(err).__name__}: {err}"
    if fast is not None:
        return fast  # type: ignore[return-value]  # predicts like a Student; it does not train
    kind = registry.manifest(settings, version)["student"]
    student = student_class(kind).load(registry.model_path(settings, version))
    student.version = version
    runtime = "torch"
    if settings.serve_quantize and hasattr(student, "encoder"):
        quantize(student)
        runtime = "torch-int8"
    student.runtime = runtime  # shown by /healthz
    student.runtime_fallback = fallback
    return student


def quantize(student: Any) -> None:
    """Dynamic int8 quantisation of a PyTorch student's encoder (``trainer.quantize.torch_int8``).

    On the shared 2-core box: p50 10.8 ms eager (1 thread) -> 4.6 ms int8; on a heads-trained student
    the overall score against the teacher moved 0.975 -> 0.967 (``bench_serving.py quality``).
    Used by ``serve`` for a version without an ONNX export (TONEFLOW_SERVE_QUANTIZE=false turns it off).
    """
    student.quantize_int8()


@dataclass(frozen=True)
class Loaded:
    version: str
    student: Any
    loaded_at: float


class ModelHolder:
    """Loaded students by registry name; ``get`` never blocks on a load."""

    def __init__(self, settings: Settings, loader: Loader = load_version) -> None:
        self.settings = settings
        self._loader = loader
        self._slots: dict[str, Loaded] = {}
        self._load_lock = threading.Lock()  # one load at a time: loads are CPU-heavy on 2 cores
        self.reloads = 0
        self.failed_loads = 0
        self.last_error: str | None = None
        self.refused: dict[str, str] = {}  # name -> why what it resolves to now could not be loaded

    def get(self, name: str) -> Loaded:
        slot = self._slots.get(name)
        if slot is None:
            raise NoStudentLoaded(name, self.last_error or "not loaded yet")
        return slot

    def versions(self) -> dict[str, str]:
        return {name: slot.version for name, slot in self._slots.items()}

    def runtimes(self) -> dict[str, str]:
        """What runs each loaded student: onnx-int8, onnx-fp32, torch-int8 or torch."""
        return {name: getattr(slot.student, "runtime", "torch") for name, slot in self._slots.items()}

    def runtime_fallbacks(self) -> dict[str, str]:
        """Loaded students that serve through PyTorch although their version has an ONNX export, and why."""
        out = {}
        for name, slot in self._slots.items():
            why = getattr(slot.student, "runtime_fallback", None)
            if why:
                out[name] = f"{slot.version}: {why}"
        return out

    def _resolve(self, name: str) -> str:
        from trainer.registry import resolve

        return resolve(self.settings, name)

    def ensure(self, names: set[str]) -> None:
        """Load whatever ``names`` now resolve to, swap each in; keep the old one on any failure."""
        changed = False
        with self._load_lock:
            for name in sorted(names):
                try:
                    version = self._resolve(name)
                    current = self._slots.get(name)
                    if current is not None and current.version == version:
                        self.refused.pop(name, None)
                        continue
                    started = time.monotonic()
                    student = self._loader(self.settings, version)
                    self._slots = {**self._slots, name: Loaded(version, student, time.time())}  # one swap
                    changed = True
                    self.reloads += current is not None
                    self.last_error = None
                    self.refused.pop(name, None)
                    log.warning("serving %s = %s (was %s; loaded in %.2f s)", name, version,
                                current.version if current else None, time.monotonic() - started)
                except Exception as err:  # noqa: BLE001 - a bad model must never take the server down
                    self.failed_loads += 1
                    self.last_error = f"{name}: {type(err).__name__}: {err}"
                    self.refused[name] = f"{type(err).__name__}: {err}"
                    log.error("could not load %s, still serving %s: %s", name,
                              self._slots[name].version if name in self._slots else "nothing", self.last_error)
            for name in set(self.refused) - names:
                del self.refused[name]
            unused = set(self._slots) - names
            if unused:
                self._slots = {k: v for k, v in self._slots.items() if k not in unused}
            if changed or unused:
                current = None  # the replaced student must not stay alive in this frame
                refreeze()  # frees the replaced students' cycles; keeps the new ones out of collections


class Reloader:
    """Polls the plan and the registry in a daemon thread; ``plan`` is always the latest good plan."""

    def __init__(self, settings: Settings, holder: ModelHolder, interval_s: float | None = None,
                 on_plan: Callable[[TrafficPlan], None] | None = None) -> None:
        self.settings = settings
        self.holder = holder
        self.interval_s = interval_s or settings.serve_reload_interval_s
        self.plan: TrafficPlan = load_plan(settings)
        self.plan_errors = 0
        self.failing_polls = 0  # polls in a row whose plan could not be read
        self.last_poll: float | None = None  # when the last poll finished
        self.last_plan_error: str | None = None
        self._on_plan = on_plan
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        """One poll: plan first (it says which models are needed), then the models."""
        # Models of the previous plan stay loaded for one more interval: a request that picked its
        # arm from the old plan a moment ago must still find its model.
        needed = self.plan.student_models()
        try:
            plan = load_plan(self.settings)
            if plan != self.plan:
                log.warning("traffic plan changed: %s", plan.to_dict())
                self.holder.ensure(needed | plan.student_models())  # load before publishing: no gap
                self.plan = plan
                if self._on_plan:
                    self._on_plan(plan)
            self.failing_polls = 0
        except Exception as err:  # noqa: BLE001 - keep the last good plan
            self.plan_errors += 1
            self.failing_polls += 1
            self.last_plan_error = f"{type(err).__name__}: {err}"
            log.error("keeping the previous traffic plan: %s", self.last_plan_error)
        self.holder.ensure(needed | self.plan.student_models())
        self.last_poll = time.time()

    def degraded(self) -> str | None:
        """Why the reloader is not keeping the server up to date, or None."""
        if self._thread is not None and not self._thread.is_alive() and not self._stop.is_set():
            return "the reloader thread died: promotions and plan changes are not picked up; restart the server"
        if self.failing_polls >= 2:
            return f"the traffic plan could not be read {self.failing_polls} polls in a row: {self.last_plan_error}"
        stale = max(20 * self.interval_s, 30.0)  # a model load takes seconds; a poll this late is stuck
        if self.last_poll is not None and time.time() - self.last_poll > stale:
            return f"the reloader's last poll finished {time.time() - self.last_poll:.0f} s ago (a load may be stuck)"
        return None

    def start(self) -> None:
        self.check()
        self._thread = threading.Thread(target=self._run, name="toneflow-reloader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

"""serving.batching: concurrent prompts share passes, light traffic stays on worker 0, a pass is
answered by one model, a student that is not thread-safe never runs twice at once, failures reach
the callers.

The students here record which thread ran each pass and how many ran at once; the batcher (its
threads, the event loop, the holder swap) is the real one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from foundation.settings import Settings
from serving.batching import Batcher
from serving.exceptions import NoStudentLoaded
from serving.models import ModelHolder


class RecordingStudent:
    """Answers each prompt with ``(version, prompt)`` after ``delay_s``; records threads and overlap."""

    name = "recording"

    def __init__(self, version: str, *, thread_safe: bool = True, delay_s: float = 0.0, fail: bool = False) -> None:
        self.version, self.thread_safe, self.delay_s, self.fail = version, thread_safe, delay_s, fail
        self.threads: list[str] = []
        self.batch_sizes: list[int] = []
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def predict(self, prompts: list[str]) -> list[tuple[str, str]]:
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.threads.append(threading.current_thread().name)
            self.batch_sizes.append(len(prompts))
        try:
            time.sleep(self.delay_s)
            if self.fail:
                msg = "forward pass failed"
                raise ValueError(msg)
            return [(self.version, p) for p in prompts]
        finally:
            with self._lock:
                self.running -= 1


def holder_with(tmp_path: Path, students: dict[str, RecordingStudent]) -> ModelHolder:
    holder = ModelHolder(Settings(data_dir=tmp_path / "data"), loader=lambda _s, version: students[version])
    holder._resolve = lambda _name: holder.pointer  # type: ignore[method-assign]  # the registry is not under test
    holder.pointer = next(iter(students))  # type: ignore[attr-defined]
    holder.ensure({"current"})
    return holder


def run_closing(batcher: Batcher, body: Callable[[], Awaitable[Any]]) -> Any:
    """``body()`` on a fresh event loop, the batcher closed afterwards whatever happened."""

    async def go() -> Any:
        try:
            return await body()
        finally:
            await batcher.close()

    return asyncio.run(go())


def test_concurrent_prompts_share_passes_and_each_gets_its_own_answer(tmp_path: Path) -> None:
    student = RecordingStudent("v1", delay_s=0.02)
    batcher = Batcher(holder_with(tmp_path, {"v1": student}), "current", max_batch=8, workers=2)

    async def go() -> list[Any]:
        return await asyncio.gather(*(batcher.predict(f"p{i}") for i in range(40)))

    answers = run_closing(batcher, go)
    assert [edit for edit, _ in answers] == [("v1", f"p{i}") for i in range(40)]
    assert all(slot.version == "v1" for _, slot in answers)
    assert batcher.items == 40 and batcher.batches < 40 and max(student.batch_sizes) <= 8
    assert student.max_running == 2  # both workers ran passes at once while prompts waited


def test_one_request_at_a_time_always_runs_on_worker_0(tmp_path: Path) -> None:
    student = RecordingStudent("v1")
    batcher = Batcher(holder_with(tmp_path, {"v1": student}), "current", max_batch=8, workers=2)

    async def go() -> None:
        for i in range(20):
            await batcher.predict(f"p{i}")
            await asyncio.sleep(0.001)

    run_closing(batcher, go)
    assert batcher.by_worker == [20, 0]
    assert set(student.threads) == {"toneflow-predict-current-0_0"}


def test_a_pass_is_answered_by_the_model_it_started_with_across_a_swap(tmp_path: Path) -> None:
    old, new = RecordingStudent("v1", delay_s=0.2), RecordingStudent("v2")
    holder = holder_with(tmp_path, {"v1": old, "v2": new})
    batcher = Batcher(holder, "current", max_batch=8, workers=1)

    async def go() -> tuple[list[Any], Any]:
        first = [asyncio.ensure_future(batcher.predict(f"p{i}")) for i in range(3)]
        await asyncio.sleep(0.05)  # the pass on v1 is running
        holder.pointer = "v2"  # type: ignore[attr-defined]
        await asyncio.to_thread(holder.ensure, {"current"})
        return await asyncio.gather(*first), await batcher.predict("after")

    first, after = run_closing(batcher, go)
    assert {(edit[0], slot.version) for edit, slot in first} == {("v1", "v1")}
    assert after[0] == ("v2", "after") and after[1].version == "v2"


def test_a_student_that_is_not_thread_safe_never_runs_two_passes_at_once(tmp_path: Path) -> None:
    student = RecordingStudent("v1", thread_safe=False, delay_s=0.01)
    batcher = Batcher(holder_with(tmp_path, {"v1": student}), "current", max_batch=2, workers=2)

    async def go() -> list[Any]:
        return await asyncio.gather(*(batcher.predict(f"p{i}") for i in range(12)))

    answers = run_closing(batcher, go)
    assert len(answers) == 12 and student.max_running == 1 and len(student.batch_sizes) >= 6


def test_failures_reach_every_caller_of_the_pass_and_the_batcher_keeps_serving(tmp_path: Path) -> None:
    bad, good = RecordingStudent("v1", fail=True), RecordingStudent("v2")
    holder = holder_with(tmp_path, {"v1": bad, "v2": good})
    batcher = Batcher(holder, "current", max_batch=8, workers=2)

    async def go() -> tuple[list[Any], Any]:
        failed = await asyncio.gather(*(batcher.predict(f"p{i}") for i in range(5)), return_exceptions=True)
        holder.pointer = "v2"  # type: ignore[attr-defined]
        await asyncio.to_thread(holder.ensure, {"current"})
        return failed, await batcher.predict("again")

    failed, again = run_closing(batcher, go)
    assert all(isinstance(f, ValueError) and "forward pass failed" in str(f) for f in failed)
    assert again[0] == ("v2", "again")


def test_no_model_loaded_fails_the_callers_with_no_student_loaded(tmp_path: Path) -> None:
    holder = ModelHolder(Settings(data_dir=tmp_path / "data"), loader=lambda _s, _v: RecordingStudent("v1"))
    batcher = Batcher(holder, "current", max_batch=8, workers=2)

    async def go() -> None:
        await batcher.predict("p")

    with pytest.raises(NoStudentLoaded):
        run_closing(batcher, go)


class CyclicStudent(RecordingStudent):
    """A student whose objects form a reference cycle, as a loaded MiniLM student's do."""

    def __init__(self, version: str) -> None:
        super().__init__(version)
        self.me = self


def test_a_replaced_student_is_freed_although_loaded_objects_are_frozen(tmp_path: Path) -> None:
    import gc
    import weakref

    students = {"v1": CyclicStudent("v1"), "v2": CyclicStudent("v2")}
    gone = weakref.ref(students["v1"])
    holder = holder_with(tmp_path, students)  # serving v1 (and its objects frozen)
    del students["v1"]
    holder.pointer = "v2"  # type: ignore[attr-defined]
    try:
        holder.ensure({"current"})
        assert holder.get("current").version == "v2"
        assert gone() is None, "the replaced student stayed alive: a promotion would leak its model"
    finally:
        gc.unfreeze()

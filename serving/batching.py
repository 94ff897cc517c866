"""Micro-batching: concurrent requests for the same student share one forward pass.

``Batcher.predict`` queues a prompt; whenever a forward-pass worker is free it takes everything
queued (up to ``max_batch``), runs ``predict`` in its own thread (the event loop stays free to
accept requests) and hands each caller its edit. A lone request is not delayed: a free worker
starts at once with whatever is queued. ``workers`` passes (one per core by default) may run at
once, because the pass is compute-bound (a batch of 8 costs several single calls,
``docs/benchmarks.md``) and ONNX Runtime / PyTorch release the GIL: with one worker the model could
never use more than one core, however many requests wait.

**The lowest-numbered free worker takes the next batch, and each worker is one fixed thread.** A
forward pass costs much more CPU on a thread that just slept than back to back (int8, one prompt,
shared 2-core box: 0.41 vs 0.75 ms, and 0.61 vs 1.29 ms in a second run; ``benchmarks/bench_serving.py
hop``); two threads taking turns, which is what a thread pool does under light traffic, cost 1.12 ms
in the first run and no more than one thread (1.30 ms) in the second. Either way the second worker
here only runs while the first is busy, so light traffic stays on one thread and heavy traffic
uses every core; the alternating wrk runs in ``docs/benchmarks.md`` ("Serving speed, round 7") are
what it bought.

No asyncio task per worker either: a pass is started from ``predict`` or from the end of the
previous pass (a done-callback on the loop), so a batch costs one hop to its thread and one back.

Guarantee: a whole batch is answered by one model object, taken from the holder when the batch
starts, so a hot swap between batches never mixes versions inside one answer.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections import deque
from concurrent.futures import CancelledError, ThreadPoolExecutor
from concurrent.futures import Future as ThreadFuture
from typing import Any

from serving.models import Loaded, ModelHolder

Waiter = tuple[str, "asyncio.Future[Any]"]


class Batcher:
    def __init__(self, holder: ModelHolder, name: str, max_batch: int, workers: int = 1) -> None:
        self.holder = holder
        self.name = name
        self.max_batch = max_batch
        self.workers = workers or os.cpu_count() or 1
        self.batches = 0
        self.items = 0
        self.by_worker = [0] * self.workers  # passes each worker ran (/healthz: light traffic stays on worker 0)
        self._queue: deque[Waiter] = deque()
        self._busy = [False] * self.workers
        self._exclusive = False  # a pass of a student that is not ``thread_safe`` is running: start no other
        self._closed = False
        self._scheduled = False  # a ``_start_passes`` is queued on the loop
        # One single-thread executor per worker (not one shared pool): worker i always runs on thread i.
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"toneflow-predict-{name}-{i}")
                         for i in range(self.workers)]
        self._loop: asyncio.AbstractEventLoop | None = None

    async def predict(self, prompt: str) -> tuple[Any, Loaded]:
        """The edit for ``prompt`` and the loaded model that produced it."""
        if self._closed:
            msg = "the server is shutting down"
            raise RuntimeError(msg)
        loop = self._loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((prompt, future))
        if not self._scheduled:  # start passes once the loop has run every request already received
            self._scheduled = True
            loop.call_soon(self._start_passes)
        return await future

    def _start_passes(self) -> None:
        """Start a pass on each free worker, lowest number first, while prompts are queued."""
        self._scheduled = False
        while self._queue and not self._exclusive:
            try:
                worker = self._busy.index(False)
            except ValueError:
                return  # every worker busy: the next one to finish takes what is queued
            items = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            items = [(p, f) for p, f in items if not f.done()]  # the client went away
            if not items:
                continue
            try:
                slot = self.holder.get(self.name)
            except Exception as err:  # noqa: BLE001 - the callers decide (fallback or 5xx)
                _fail(items, err)
                continue
            if not getattr(slot.student, "thread_safe", False):
                if any(self._busy):  # e.g. transformers' tokenizer wrapper mutates its Rust tokenizer
                    self._queue.extendleft(reversed(items))
                    return
                self._exclusive = True
            self._busy[worker] = True
            done = self._threads[worker].submit(slot.student.predict, [p for p, _ in items])
            done.add_done_callback(functools.partial(self._on_thread_done, worker=worker, items=items, slot=slot))

    def _on_thread_done(self, done: ThreadFuture[Any], *, worker: int, items: list[Waiter], slot: Loaded) -> None:
        """Runs in the worker's thread: hand the outcome to the event loop (one wake-up per pass)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._finish, done, worker, items, slot)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _finish(self, done: ThreadFuture[Any], worker: int, items: list[Waiter], slot: Loaded) -> None:
        self._busy[worker] = False
        self._exclusive = False
        try:
            edits = done.result()
            if len(edits) != len(items):
                msg = f"student returned {len(edits)} edits for {len(items)} prompts"
                raise RuntimeError(msg)
        except CancelledError:  # close() cancelled a pass that had not started
            _fail(items, RuntimeError("the server is shutting down"))
        except Exception as err:  # noqa: BLE001 - the callers decide (fallback or 5xx)
            _fail(items, err)
        else:
            self.batches += 1
            self.items += len(items)
            self.by_worker[worker] += 1
            for (_, future), edit in zip(items, edits):
                if not future.done():  # the client may have gone away
                    future.set_result((edit, slot))
        if not self._closed:
            self._start_passes()

    async def close(self) -> None:
        """Refuse new prompts, fail the queued ones, let running passes finish in their threads."""
        self._closed = True
        _fail(list(self._queue), RuntimeError("the server is shutting down"))
        self._queue.clear()
        for thread in self._threads:
            thread.shutdown(wait=False, cancel_futures=True)


def _fail(items: list[Waiter], err: Exception) -> None:
    for _, future in items:
        if not future.done():
            future.set_exception(err)

"""Micro-batching: concurrent requests for the same student share one forward pass.

On a 2-core CPU one MiniLM forward pass for 1 prompt and for 16 prompts cost about the same, so
under load answering requests one by one wastes most of the machine. ``Batcher.predict`` queues a
prompt; ``workers`` worker tasks per student name (one per core by default) each take everything
queued (up to ``max_batch``), run ``predict`` in a thread (the event loop stays free to accept
requests) and hand each caller its edit. A lone request is not delayed: a free worker starts at once
with whatever is queued. Several workers because the forward pass is compute-bound (a batch of 8
costs about 8 single calls, ``docs/benchmarks.md``) and ONNX Runtime / PyTorch release the GIL:
with one worker the model could never use more than one core, however many requests wait.

Guarantee: a whole batch is answered by one model object, taken from the holder when the batch
starts, so a hot swap between batches never mixes versions inside one answer.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from serving.models import Loaded, ModelHolder


class Batcher:
    def __init__(self, holder: ModelHolder, name: str, max_batch: int, workers: int = 1) -> None:
        self.holder = holder
        self.name = name
        self.max_batch = max_batch
        self.workers = workers or os.cpu_count() or 1
        self.batches = 0
        self.items = 0
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[Any]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._one_at_a_time = asyncio.Lock()  # for a student that does not say it is ``thread_safe``
        # Its own threads: the loop's default executor is shared with the teacher and the reloader.
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"toneflow-predict-{name}")

    async def predict(self, prompt: str) -> tuple[Any, Loaded]:
        """The edit for ``prompt`` and the loaded model that produced it."""
        if len(self._tasks) < self.workers or any(t.done() for t in self._tasks):  # first call, or a worker died
            loop = asyncio.get_running_loop()
            self._tasks = [t for t in self._tasks if not t.done()]
            self._tasks += [loop.create_task(self._work(), name=f"batcher-{self.name}")
                            for _ in range(self.workers - len(self._tasks))]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((prompt, future))
        return await future

    async def _work(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < self.max_batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                slot = self.holder.get(self.name)
                edits = await self._predict(slot.student, [p for p, _ in items])
                if len(edits) != len(items):
                    msg = f"student returned {len(edits)} edits for {len(items)} prompts"
                    raise RuntimeError(msg)
            except Exception as err:  # noqa: BLE001 - the callers decide (fallback or 5xx)
                for _, future in items:
                    if not future.done():
                        future.set_exception(err)
                continue
            self.batches += 1
            self.items += len(items)
            for (_, future), edit in zip(items, edits):
                if not future.done():  # the client may have gone away
                    future.set_result((edit, slot))

    async def _predict(self, student: Any, prompts: list[str]) -> Any:
        loop = asyncio.get_running_loop()
        if getattr(student, "thread_safe", False):
            return await loop.run_in_executor(self._pool, student.predict, prompts)
        async with self._one_at_a_time:  # e.g. transformers' tokenizer wrapper mutates its Rust tokenizer
            return await loop.run_in_executor(self._pool, student.predict, prompts)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._pool.shutdown(wait=False, cancel_futures=True)

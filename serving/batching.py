"""Micro-batching: concurrent requests for the same student share one forward pass.

On a 2-core CPU one MiniLM forward pass for 1 prompt and for 16 prompts cost about the same, so
under load answering requests one by one wastes most of the machine. ``Batcher.predict`` queues a
prompt; one worker task per student name takes everything queued (up to ``max_batch``), runs
``predict`` in a worker thread (the event loop stays free to accept requests) and hands each caller
its edit. A lone request is not delayed: the worker starts at once with whatever is queued.

Guarantee: a whole batch is answered by one model object, taken from the holder when the batch
starts, so a hot swap between batches never mixes versions inside one answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from serving.models import Loaded, ModelHolder


class Batcher:
    def __init__(self, holder: ModelHolder, name: str, max_batch: int) -> None:
        self.holder = holder
        self.name = name
        self.max_batch = max_batch
        self.batches = 0
        self.items = 0
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def predict(self, prompt: str) -> tuple[Any, Loaded]:
        """The edit for ``prompt`` and the loaded model that produced it."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((prompt, future))
        return await future

    async def _work(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < self.max_batch and not self._queue.empty():
                items.append(self._queue.get_nowait())
            try:
                slot = self.holder.get(self.name)
                edits = await asyncio.to_thread(slot.student.predict, [p for p, _ in items])
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

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass

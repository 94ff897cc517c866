"""``toneflow worker`` under the conditions of issue 4's stall, made repeatable.

At the end of recovery Faust seeks the stream partitions to their committed offsets, then clears
every stream buffer. On a loaded machine the fetcher can deliver records into those buffers in
between, while an agent is busy (the labeler holding a full batch), and the clear drops them.
Here each seek returns only once some record is waiting in a stream buffer (or after
``TONEFLOW_TEST_SEEK_WAIT_S``), and the labeler takes small batches so the rest of a backlog
waits in its buffer. Without ``streams.faust_fixes`` the worker stalls; with it, the consumer's
flow is stopped during the seek, nothing is delivered, and the wait simply times out.
Run as ``python -m tests.slow_seek_worker`` with the worker's environment.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from faust.transport.consumer import Consumer

from toneflow.cli import main

_perform_seek = Consumer.perform_seek


def _buffered(consumer: Consumer) -> int:
    """Prompts waiting in the labeler's (or the prompt sink's) stream buffer."""
    return sum(ch.queue.qsize() for ch in consumer.app.topics._topic_name_index.get("toneflow.prompts", ()))


async def _seek_then_wait_for_buffered_records(self: Consumer) -> None:
    await _perform_seek(self)
    deadline = time.monotonic() + float(os.environ.get("TONEFLOW_TEST_SEEK_WAIT_S", "2"))
    while time.monotonic() < deadline and not _buffered(self):
        await asyncio.sleep(0)  # every loop turn: an agent may empty its buffer within a millisecond


Consumer.perform_seek = _seek_then_wait_for_buffered_records  # type: ignore[method-assign]
os.environ.setdefault("TONEFLOW_LABEL_BATCH", "4")

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))

"""``toneflow worker`` under the conditions of issue 4's stall, made repeatable.

Issue 4: a restarted worker that had to recover the join table from its changelog processed a
first chunk and then sat idle, because records fetched while it recovered and seeked were dropped
(a Faust race, when the worker ran on Faust). The batched engine (``streams/batch_stage.py``)
recovers inside the consumer's assignment callback, before the join's partitions are fetched at
all; this wrapper makes that recovery slow (``TONEFLOW_TEST_SEEK_WAIT_S``, default 2 s) while the
labeler, with small batches, keeps producing labels for the join's partitions. A worker that lost
or skipped records fetched around the recovery would stall here, as the Faust one did.
Run as ``python -m tests.slow_seek_worker`` with the worker's environment.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from streams import changelog
from toneflow.cli import main

_recover = changelog.recover


def _recover_slowly(*args: Any, **kwargs: Any) -> Any:
    states = _recover(*args, **kwargs)
    time.sleep(float(os.environ.get("TONEFLOW_TEST_SEEK_WAIT_S", "2")))
    return states


changelog.recover = _recover_slowly  # type: ignore[assignment]
os.environ.setdefault("TONEFLOW_LABEL_BATCH", "4")

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))

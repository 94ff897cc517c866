"""Where the labeler's main-thread CPU goes, in process (no broker): a profile for the next cut.

    .venv/bin/python benchmarks/bench_labeler_cpu.py --projects 3000 --repeats 7

Plans the simulator's traffic (``--projects``, seed 1, as ``bench_pipeline.py`` does), keeps the
prompt records, and times on this thread's CPU clock (best of ``--repeats``, µs per prompt):
``json.loads`` of the record (the parse floor), ``PromptEvent.model_validate_json`` of it, and of
its two nested objects alone (``served_edit``, ``served_by``); then the labeler's own batch step
(``split_batch_decoded``: decode, the served-edit signature check, the reused label) plus encoding
each label, first timed, then under cProfile (top functions by own time). Last, how many of the
prompts' served edits are distinct byte strings: what a cache of decoded edits by their bytes
could hit. The machine may be shared: the load average is printed; compare ratios within a run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foundation.settings import Settings  # noqa: E402
from schemas.edit import Edit  # noqa: E402
from schemas.events import TOPIC_PROMPTS, PromptEvent, ServedBy, to_json_bytes  # noqa: E402
from streams.codec import Raw  # noqa: E402
from streams.labeler import split_batch_decoded  # noqa: E402
from streams.simulator import plan_traffic  # noqa: E402


class _Pipe:
    """What ``split_batch_decoded`` reads of a pipeline: settings (the signing key), no teacher."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.teacher = None

    def count(self, *_: Any) -> None:
        pass


def best_us(fn: Callable[[Any], Any], items: Sequence[Any], repeats: int) -> float:
    """Best of ``repeats`` passes over ``items``, thread CPU µs per item."""
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        for item in items:
            fn(item)
        best = min(best, time.thread_time() - start)
    return best / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="toneflow-bench-labeler-cpu-")))
    plan = plan_traffic(settings, args.projects, 1)
    raws = [Raw(topic, 0, i, key.encode() if key else None, value)
            for i, (topic, key, value, _) in enumerate(plan.wire) if topic == TOPIC_PROMPTS]
    values = [raw.value for raw in raws if raw.value is not None]
    dicts = [json.loads(value) for value in values]
    edits = [json.dumps(d["served_edit"], separators=(",", ":")) for d in dicts if d.get("served_edit")]
    served = [json.dumps(d["served_by"], separators=(",", ":")) for d in dicts if d.get("served_by")]
    print(f"{len(values):,} prompts; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'json.loads of the record (parse floor)':48s} {best_us(json.loads, values, args.repeats):6.1f} µs")
    print(f"{'PromptEvent.model_validate_json':48s} "
          f"{best_us(PromptEvent.model_validate_json, values, args.repeats):6.1f} µs")
    print(f"{'  its served_edit alone (Edit)':48s} {best_us(Edit.model_validate_json, edits, args.repeats):6.1f} µs")
    print(f"{'  its served_by alone (ServedBy)':48s} "
          f"{best_us(ServedBy.model_validate_json, served, args.repeats):6.1f} µs")

    pipe: Any = _Pipe(settings)  # duck-typed: the two attributes and count() the step reads
    items = [(raw, raw) for raw in raws]

    def labeler_batch(_: Any) -> None:
        outputs, _, _, _ = split_batch_decoded(pipe, items)
        for _, _, event in outputs:
            to_json_bytes(event)

    step = best_us(labeler_batch, [None], args.repeats) / len(raws)
    print(f"{'labeler batch step + encoding the labels':48s} {step:6.1f} µs")
    profile = cProfile.Profile()
    profile.enable()
    labeler_batch(None)
    profile.disable()
    print("\nthe same step under cProfile, top 15 by own time:")
    pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(15)

    def edit_bytes(value: bytes) -> bytes:
        start = value.find(b'"served_edit":')
        return value[start:value.find(b',"served_sig":', start)]

    distinct = len({edit_bytes(value) for value in values})
    print(f"served edits: {distinct:,} distinct byte strings of {len(values):,} prompts "
          f"({distinct / len(values):.0%}); distinct prompt texts {len({d['prompt'] for d in dicts}):,}")


if __name__ == "__main__":
    main()

"""Predict latency of the default student, one prompt per call (what the server does).

    .venv/bin/python benchmarks/bench_trainer_latency.py --data-dir /path/to/data   # the current model
    .venv/bin/python benchmarks/bench_trainer_latency.py                            # a quick frozen model

Prints p50 / p95 over ``--calls`` single-prompt ``predict`` calls for 1 and 2 torch threads,
and for the encoder with dynamic int8 quantisation (a serving option, not the default).
Target: p50 ≤ 10 ms on this 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

PROMPTS = ["golden hour", "make it moodier", "Morocco", "cool morning light", "vintage film, slightly faded",
           "a bit warmer and more contrast", "noir", "lush greens please"]


def _measure(student, calls: int) -> tuple[float, float]:
    for p in PROMPTS:
        student.predict([p])  # warm-up
    times = []
    for i in range(calls):
        t = time.perf_counter()
        student.predict([PROMPTS[i % len(PROMPTS)]])
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="data dir holding a registry with a current model")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from foundation.settings import Settings
    from trainer import registry
    from trainer.data import make_example
    from trainer.students.base import FitConfig
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    if args.data_dir:
        student = registry.load_student(Settings(data_dir=Path(args.data_dir)))
    else:
        student = MiniLMStudent(MiniLMConfig(finetune="frozen", fit=FitConfig(epochs=1, progress=False)))
        rows = [make_example(p, {"adjust": {"contrast": 10 + i}}) for i, p in enumerate(PROMPTS)]
        student.fit(rows, rows)
        tmp = Path(tempfile.mkdtemp()) / "m"
        student.save(tmp)
        student = MiniLMStudent.load(tmp)
    print("| variant | threads | p50 ms | p95 ms |\n|---|---|---|---|")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        p50, p95 = _measure(student, args.calls)
        print(f"| fp32 | {threads} | {p50:.2f} | {p95:.2f} |")
    if not student.quantize_int8():  # what `toneflow serve` does (TONEFLOW_SERVE_QUANTIZE)
        return
    for threads in (1, 2):
        torch.set_num_threads(threads)
        p50, p95 = _measure(student, args.calls)
        print(f"| int8 dynamic | {threads} | {p50:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()

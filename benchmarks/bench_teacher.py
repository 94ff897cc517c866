"""Latency of the offline teacher as ``toneflow teach`` runs it (warm: model and library loaded).

    .venv/bin/python benchmarks/bench_teacher.py            # 200 prompts, prints p50/p95
    .venv/bin/python benchmarks/bench_teacher.py --n 1000 --cli   # also time one cold CLI call

Reports, per prompt: one prompt per call (interactive `toneflow teach "..."`), and batched calls
(`toneflow teach --input`, the streams labeler, the trainer). Prompts are library looks with
modifiers and compounds, plus free text, none of them cached between calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODIFIERS = ("", "slightly ", "very ", "less ", "a bit more ", "not too ")
EXTRA = ("sunset at the beach", "foggy London morning", "remove the dog", "cinamatic look", "warm and moody",
         "make it look like an old polaroid", "Tokyo streets at night", "crop it to a square")


def prompts(n: int) -> list[str]:
    from teacher.library import load_library

    looks = [look.name for look in load_library().looks]
    out = []
    i = 0
    while len(out) < n:
        look, other = looks[i % len(looks)], looks[(i * 7 + 3) % len(looks)]
        kind = i % 4
        if kind == 0:
            out.append(f"{MODIFIERS[i % len(MODIFIERS)]}{look}")
        elif kind == 1:
            out.append(f"{look} and {other}")
        elif kind == 2:
            out.append(EXTRA[i % len(EXTRA)] + f" #{i}")
        else:
            out.append(f"make it {look}, {MODIFIERS[(i + 1) % len(MODIFIERS)]}{other}")
        i += 1
    return out


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="prompts to label")
    parser.add_argument("--batch", type=int, default=64, help="batch size for the batched run")
    parser.add_argument("--cli", action="store_true", help="also time one cold `toneflow teach` process")
    args = parser.parse_args()

    from teacher.offline import OfflineTeacher

    teacher = OfflineTeacher()
    start = time.perf_counter()
    teacher.warm()
    warm_s = time.perf_counter() - start
    items = prompts(args.n)
    asyncio.run(teacher.label(items[:8]))  # first forward passes allocate; not part of steady state

    single = []
    for prompt in items:
        t0 = time.perf_counter()
        asyncio.run(teacher.label([prompt]))
        single.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    for s in range(0, len(items), args.batch):
        asyncio.run(teacher.label(items[s:s + args.batch]))
    batched = (time.perf_counter() - t0) * 1000 / len(items)

    print(f"offline teacher {teacher.version}; encoder threads {teacher.encoder.threads}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"start-up (encoder + library embeddings): {warm_s:.2f} s")
    print(f"one prompt per call, warm: p50 {statistics.median(single):.2f} ms, p95 {pct(single, 0.95):.2f} ms "
          f"({len(single)} prompts)")
    print(f"batched ({args.batch} per call), warm: {batched:.2f} ms per prompt")
    if args.cli:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "toneflow", "teach", "golden hour"], check=True, capture_output=True)
        print(f"cold `toneflow teach \"golden hour\"` process: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()

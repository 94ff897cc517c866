"""Latency of the offline teacher as ``toneflow teach`` runs it (warm: model and library loaded),
on each encoder runtime side by side (``teacher/encoder_graph.py``: ONNX Runtime; PyTorch eager).

    .venv/bin/python benchmarks/bench_teacher.py            # 200 prompts, 3 interleaved rounds
    .venv/bin/python benchmarks/bench_teacher.py --runtimes onnx --n 1000 --cli   # also a cold CLI call

Reports, per prompt and runtime: one prompt per call (interactive `toneflow teach "..."`, the teacher
arm of `toneflow serve`), and batched calls (`toneflow teach --input`, the streams labeler, the
trainer). Prompts are library looks with modifiers and compounds, plus free text, none of them
cached between calls. The runtimes take turns within each round, so load on the machine falls on
both alike; the table shows the median round and the ratio of each runtime to the first.
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


def _round(teacher, items: list[str], batch: int) -> tuple[float, float, float]:  # noqa: ANN001
    """(p50, p95 of one prompt per call, ms per prompt batched) of one pass over ``items``."""
    single = []
    for prompt in items:
        t0 = time.perf_counter()
        asyncio.run(teacher.label([prompt]))
        single.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    for s in range(0, len(items), batch):
        asyncio.run(teacher.label(items[s:s + batch]))
    return statistics.median(single), pct(single, 0.95), (time.perf_counter() - t0) * 1000 / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="prompts to label")
    parser.add_argument("--batch", type=int, default=64, help="batch size for the batched run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median round is shown")
    parser.add_argument("--runtimes", default="onnx,torch", help="encoder runtimes, comma-separated (onnx, torch)")
    parser.add_argument("--cli", action="store_true", help="also time one cold `toneflow teach` process")
    args = parser.parse_args()

    from teacher.encoder import Encoder
    from teacher.offline import OfflineTeacher

    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = sorted(set(runtimes) - {"onnx", "torch"})
    if unknown or not runtimes:
        parser.error(f"--runtimes takes onnx and/or torch, got {args.runtimes!r}")
    teachers, loads = {}, {}
    for runtime in runtimes:
        encoder = Encoder(runtime=runtime)
        start = time.perf_counter()
        encoder.encode(["warm up"])  # loads it (the ONNX graph is exported first if this machine has none)
        loads[runtime] = time.perf_counter() - start
        teacher = OfflineTeacher(encoder=encoder)
        teacher.warm()  # the library's phrase vectors (cached on disk after a first run)
        if encoder.runtime != runtime:
            sys.exit(f"the {runtime} encoder could not be had (it fell back to {teacher.encoder.runtime}); see the log")
        teachers[runtime] = teacher
    items = prompts(args.n)
    for teacher in teachers.values():
        asyncio.run(teacher.label(items[:8]))  # first forward passes allocate; not part of steady state
    rounds: dict[str, list[tuple[float, float, float]]] = {r: [] for r in runtimes}
    for _ in range(args.rounds):
        for runtime, teacher in teachers.items():
            rounds[runtime].append(_round(teacher, items, args.batch))

    first = next(iter(teachers.values()))
    print(f"offline teacher {first.version}; encoder threads {first.encoder.threads}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}; {len(items)} prompts, {args.rounds} interleaved rounds")
    print(f"{'encoder runtime':<16} {'load s':>10} {'single p50 ms':>13} {'p95 ms':>7} {'batched ms':>10} "
          f"{'p50 vs ' + runtimes[0]:>12} {'batched vs ' + runtimes[0]:>16}   rounds' single p50")
    base = rounds[runtimes[0]]
    for runtime in runtimes:
        p50, p95, batched = (statistics.median(r[i] for r in rounds[runtime]) for i in range(3))
        b50, _, bbatch = (statistics.median(r[i] for r in base) for i in range(3))
        print(f"{runtime:<16} {loads[runtime]:>10.2f} {p50:>13.2f} {p95:>7.2f} {batched:>10.2f} {p50 / b50:>11.2f}x "
              f"{batched / bbatch:>15.2f}x   " + " ".join(f"{r[0]:.2f}" for r in rounds[runtime]))
    if args.cli:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "toneflow", "teach", "golden hour"], check=True, capture_output=True)
        print(f"cold `toneflow teach \"golden hour\"` process: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()

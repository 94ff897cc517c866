"""Serving speed: the student in each runtime vs the teacher per request, and the HTTP API under wrk.

    .venv/bin/python benchmarks/bench_serving.py latency     # PyTorch eager/int8, ONNX Runtime fp32/int8, teacher
    .venv/bin/python benchmarks/bench_serving.py depth       # ONNX Runtime int8 at 6/5/4/3 encoder layers
    .venv/bin/python benchmarks/bench_serving.py quality     # every runtime/quantisation vs PyTorch eager
    .venv/bin/python benchmarks/bench_serving.py http        # wrk, 32 connections, a promotion mid-run, 3 rounds
    .venv/bin/python benchmarks/bench_serving.py hop         # CPU of one int8 pass: back to back, after a sleep, two threads
    .venv/bin/python benchmarks/bench_serving.py http --quick

``latency`` times one prompt per call (what a user waits for, minus HTTP: tokenise, forward, decode)
for the MiniLM student in PyTorch eager (all cores, 1 thread), PyTorch dynamic int8, ONNX Runtime
fp32 and int8 (1 thread), and the teacher (offline; OpenAI too when TONEFLOW_OPENAI_API_KEY is set),
in interleaved rounds of one run; it prints the median round, each round's p50 and the ratio to the
paper's 1.38 s. The student is the registry's `current` model (with its stored export) when
TONEFLOW_DATA_DIR has one, else an untrained MiniLM of the depth `toneflow train` gives by default
(2 of 6 encoder layers, ``trainer.config.DEPTH_RECIPE``; same architecture, same cost; `--layers N`
for another, 0 = all 6), exported afresh as a promote would. Pin it to one core (`taskset -c 1`)
for the one-thread figures.

``quality`` trains a student quickly and compares every form (and each int8 candidate) with the
PyTorch eager one: overall on unseen intents, edit agreement, p50, and direction accuracy and
agreement on the real requests (../shared/benchmarks/real-requests/dev.tsv; skipped when absent).

``hop`` prices what ``serving.batching`` is built around: the CPU of one ONNX int8 pass (one
prompt) run back to back on one thread, after a 1 ms sleep on the same thread, and after a 1 ms
sleep with two threads taking turns (what a thread pool does under light traffic).

``http`` starts `toneflow serve` as a subprocess on a temp registry with two exported MiniLM
versions and drives POST /v1/edit with wrk (Debian's package; `wrk_edit.lua` builds the bodies):
per round one sequential run (1 connection) and one loaded run (32 connections) with a promotion
half-way, then prints requests/s, p50/p99, errors and the versions served (exit 1 on any error or
when the promoted version was never served). ``--events`` also emits every prompt event to the
embedded broker, as production does. Numbers on a shared 2-core box are noisy: quote medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPTS = ("golden hour", "Morocco", "make it moodier", "cool morning in the mountains", "film noir",
           "lush greens", "faded summer polaroid", "teal and orange blockbuster", "soft pastel wedding",
           "Tokyo streets at night", "bleach bypass", "warm autumn forest")



def _scratch(prefix: str) -> Path:
    """A temp dir removed when the benchmark exits: each run writes two or more students and their
    exports (~400 MB), which used to stay behind in /tmp."""
    import atexit
    import shutil

    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def summary(name: str, ms: list[float]) -> dict[str, float | str]:
    return {"name": name, "n": len(ms), "p50": statistics.median(ms), "p95": pct(ms, 95), "p99": pct(ms, 99)}


def time_calls(fn, n: int, warmup: int = 10, cpu: list[float] | None = None) -> list[float]:  # noqa: ANN001
    """Wall-clock ms of each call; ``cpu`` (if given) gets each call's process CPU ms too. On a loaded
    machine wall time includes the time the process waited for a core; CPU time mostly does not."""
    for i in range(warmup):
        fn(PROMPTS[i % len(PROMPTS)])
    out = []
    for i in range(n):
        prompt = f"{PROMPTS[i % len(PROMPTS)]} {i}"  # never the same string twice: no cache can help
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(prompt)
        out.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - start_cpu) * 1000)
    return out


def _onnx_students(settings, student):  # noqa: ANN001, ANN202
    """ORT fp32 and int8 forms of ``student``: the registry's stored export when it has one, else a
    fresh export of the same weights into a temp dir (what a promote would store)."""
    from serving.ort_student import OrtStudent
    from trainer import registry
    from trainer.onnx_export import export_student
    from trainer.students.minilm import MiniLMStudent

    root = registry.verified_export(settings, student.version) if student.version else None
    if root is not None:
        model_dir = registry.model_path(settings, student.version)
    else:
        tmp = _scratch("toneflow-bench-onnx-")
        model_dir, root = tmp / "model", tmp / "export"
        student.save(model_dir)
        export_student(MiniLMStudent.load(model_dir), root)
    return OrtStudent(model_dir, root, int8=False), OrtStudent(model_dir, root, int8=True)


def _default_depth(layers: int | None) -> int:
    """``layers``, or the encoder depth ``toneflow train`` gives by default (``DEPTH_RECIPE``) when None."""
    from trainer.config import DEPTH_RECIPE

    return DEPTH_RECIPE.layers if layers is None else layers


def latency(n: int, rounds: int, layers: int | None = None) -> None:
    """Every variant timed in each of ``rounds`` interleaved rounds; the table shows the median round.

    ``layers``: the untrained student's encoder depth when the registry has no model (None: the
    training default's, ``DEPTH_RECIPE``; 0: all)."""
    import copy

    import torch

    from foundation.settings import get_settings
    from serving.models import quantize
    from teacher import get_teacher
    from trainer.config import DEPTH_RECIPE
    from trainer.registry import load_student, read_current
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    settings = get_settings()
    if read_current(settings):
        student = load_student(settings)
    else:
        keep = _default_depth(layers)
        pick = DEPTH_RECIPE.layer_pick if layers is None else "first"
        student = MiniLMStudent(MiniLMConfig(layers=keep, layer_pick=pick))  # type: ignore[arg-type]
    label = (f"student {student.name}@{student.version or 'untrained'} "
             f"({student.encoder.config.num_hidden_layers} layers)")
    ort_fp32, ort_int8 = _onnx_students(settings, student)
    int8 = copy.copy(student)
    int8.encoder = copy.deepcopy(student.encoder)
    quantize(int8)
    cores = len(os.sched_getaffinity(0))  # the cores this process may use (taskset)
    variants = [  # (name, torch threads, predict)
        *([(f"{label} PyTorch eager, {cores} threads", cores, student.predict)] if cores > 1 else []),
        (f"{label} PyTorch eager, 1 thread", 1, student.predict),
        (f"{label} PyTorch int8 dynamic, 1 thread", 1, int8.predict),
        (f"{label} ONNX Runtime fp32, 1 thread", 1, ort_fp32.predict),
        (f"{label} ONNX Runtime int8, 1 thread", 1, ort_int8.predict),
    ]
    teachers = [("offline", get_teacher(settings, "offline"))]
    if settings.openai_api_key is not None:
        teachers.append(("openai", get_teacher(settings, "openai")))
    for name, teacher in teachers:
        variants.append((f"teacher {name} ({teacher.version})", cores,
                         lambda ps, t=teacher: asyncio.run(t.label(list(ps)))))
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    for _ in range(rounds):
        for name, threads, predict in variants:
            torch.set_num_threads(threads)
            calls = 20 if "openai" in name else n
            cpu: list[float] = []
            row = summary(name, time_calls(lambda p, f=predict: f([p]), calls, cpu=cpu))
            runs[name].append({**row, "cpu50": statistics.median(cpu)})
    rows = []
    for per_round in runs.values():
        mid = sorted(per_round, key=lambda r: r["p50"])[len(per_round) // 2]
        rows.append({**mid, "rounds": [r["p50"] for r in per_round],
                     "cpu50": statistics.median(r["cpu50"] for r in per_round)})
    base = min(r["p50"] for r in rows if str(r["name"]).startswith("student"))
    print(f"{cores} of {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {rounds} rounds x {n} prompts; "
          "median round shown; the paper's fastest student: 1.38 s (FlanT5-base, L4 GPU)")
    print(f"{'':74} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'x best':>7} {'1.38 s / p50':>13} {'CPU p50':>8}"
          "  p50 of each round")
    for r in rows:
        print(f"{r['name']:<74} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f} {r['p50'] / base:>6.1f}x "
              f"{1380 / r['p50']:>12.0f}x {r['cpu50']:>8.2f}  {' '.join(f'{x:.2f}' for x in r['rounds'])}")


def depth(n: int, rounds: int, layers: list[int]) -> None:
    """ORT int8 (one thread) of the MiniLM student at each encoder depth, in interleaved rounds.

    The students are untrained: dynamic int8 costs the same whatever the weights hold, so the cost of a
    depth does not wait for a training run (``bench_student_variants.py`` prices its quality)."""
    from serving.ort_student import OrtStudent
    from trainer.onnx_export import export_student
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    tmp = _scratch("toneflow-bench-depth-")
    students = {}
    for depth_n in layers:
        model_dir, root = tmp / f"model-{depth_n}", tmp / f"export-{depth_n}"
        MiniLMStudent(MiniLMConfig(layers=depth_n)).save(model_dir)
        export_student(MiniLMStudent.load(model_dir), root)
        students[depth_n] = OrtStudent(model_dir, root, int8=True)
    runs: dict[int, list[dict]] = {d: [] for d in layers}
    for _ in range(rounds):
        for depth_n, student in students.items():
            cpu: list[float] = []
            row = summary(f"{depth_n} layers", time_calls(lambda p, f=student.predict: f([p]), n, cpu=cpu))
            runs[depth_n].append({**row, "cpu50": statistics.median(cpu)})
    print(f"{len(os.sched_getaffinity(0))} of {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{rounds} rounds x {n} prompts; ONNX Runtime int8, 1 thread; median round shown")
    print(f"{'encoder layers':<16} {'p50 ms':>8} {'p95 ms':>8} {'CPU p50 ms':>11}  p50 of each round")
    for depth_n, per_round in runs.items():
        mid = sorted(per_round, key=lambda r: r["p50"])[len(per_round) // 2]
        cpu50 = statistics.median(r["cpu50"] for r in per_round)
        each = " ".join(f"{r['p50']:.2f}" for r in per_round)
        print(f"{depth_n:<16} {mid['p50']:>8.2f} {mid['p95']:>8.2f} {cpu50:>11.2f}  {each}")


WRK_SCRIPT = Path(__file__).with_name("wrk_edit.lua")


def _wrk(url: str, connections: int, seconds: float, threads: int, server_pid: int | None = None) -> dict:
    """One wrk run against POST /v1/edit; its Lua ``done`` prints the figures as one JSON line."""
    import json
    import resource
    import shutil

    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        sys.exit(2)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = _cpu_s(server_pid) if server_pid else 0.0
    out = subprocess.run(["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds:g}s",
                          "--timeout", "10s", "-s", str(WRK_SCRIPT), f"{url}/v1/edit"],
                         capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    r = json.loads(line.removeprefix("WRK_JSON "))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    n = max(r["requests"], 1)
    r["wrk_cpu_ms"] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000 / n
    r["server_cpu_ms"] = ((_cpu_s(server_pid) - server_before) * 1000 / n) if server_pid else float("nan")
    return r


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu(r: dict) -> str:
    return f"{r['server_cpu_ms']:.2f}+{r['wrk_cpu_ms']:.2f}"


def http(connections: int, seconds: float, rounds: int, threads: int, sequential_s: float, events: bool,
         layers: int | None = None) -> None:
    """`toneflow serve` (a subprocess) driven by wrk (another process) on loopback; a promotion in the
    middle of every loaded round, alternating between two versions."""
    import threading

    import httpx

    from foundation import broker
    from foundation.settings import Settings
    from schemas.events import TOPICS
    from serving.testing import free_port, register_students
    from trainer import registry

    data = _scratch("toneflow-bench-serving-") / "data"
    settings = Settings(data_dir=data)
    layers = _default_depth(layers)
    versions = register_students(settings, 2, layers)
    registry.promote(settings, versions[0])
    # The promote stores the export in the trainer's process; here it is stored before the run, so the
    # mid-run promote measures serving (pointer move + hot reload), not an export competing for the CPU.
    registry.store_export(settings, versions[1])
    port = free_port()
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(data), "TONEFLOW_SERVE_EMIT_EVENTS": str(events).lower()}
    if events:  # the embedded broker in the same data dir; the server finds it through its state file
        broker.start(settings, TOPICS)
    server = subprocess.Popen([sys.executable, "-m", "toneflow", "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    results, seq = [], []
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        runtime = httpx.get(f"{url}/healthz", timeout=5).json()["runtimes"].get("current")
        _wrk(url, 4, 2, 1)  # warm-up, not counted
        for n in range(rounds):
            seq.append(_wrk(url, 1, sequential_s, 1, server.pid))
            target = versions[(n + 1) % 2]
            timer = threading.Timer(seconds / 2, registry.promote, (settings, target), {"force": True})
            timer.start()
            before = httpx.get(f"{url}/healthz", timeout=5).json()["served_versions"]
            r = _wrk(url, connections, seconds, threads, server.pid)
            timer.join()
            after = httpx.get(f"{url}/healthz", timeout=5).json()
            r["served"] = {k: v - before.get(k, 0) for k, v in after["served_versions"].items() if v - before.get(k, 0)}
            r["promoted_to"] = target
            results.append(r)
        health = httpx.get(f"{url}/healthz", timeout=5).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
        if events:
            broker.stop(settings)
    workers = os.environ.get("TONEFLOW_SERVE_WORKERS", "0")
    print(f"`toneflow serve` ({runtime}, uvloop + httptools, the ASGI front, {workers if workers != '0' else 'one per core'} "
          f"forward passes at once) vs wrk on loopback; {os.cpu_count()} cores shared, "
          f"load average {os.getloadavg()[0]:.1f}; {rounds} rounds; encoder layers: {layers or 'all 6'}")
    print(f"{'run':<44} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'CPU ms/req':>11}  "
          "served (a promotion mid-run)")
    for n, (q, r) in enumerate(zip(seq, results), 1):
        print(f"{f'round {n}: sequential (1 connection, {sequential_s:g} s)':<44} {q['rps']:>7.0f} "
              f"{q['p50_us'] / 1000:>7.2f} {q['p99_us'] / 1000:>7.2f} {q['errors']:>7} {_cpu(q):>11}")
        served = ", ".join(f"{k.split('@')[-1]} {v}" for k, v in sorted(r["served"].items()))
        print(f"{f'round {n}: {connections} connections, {seconds:g} s':<44} {r['rps']:>7.0f} "
              f"{r['p50_us'] / 1000:>7.2f} {r['p99_us'] / 1000:>7.2f} {r['errors']:>7} {_cpu(r):>11}  "
              f"{served} -> {r['promoted_to']}")
    med = lambda rows, key: statistics.median(x[key] for x in rows)  # noqa: E731
    print(f"{'median: sequential':<44} {med(seq, 'rps'):>7.0f} {med(seq, 'p50_us') / 1000:>7.2f} "
          f"{med(seq, 'p99_us') / 1000:>7.2f} {sum(x['errors'] for x in seq):>7}")
    print(f"{f'median: {connections} connections':<44} {med(results, 'rps'):>7.0f} {med(results, 'p50_us') / 1000:>7.2f} "
          f"{med(results, 'p99_us') / 1000:>7.2f} {sum(x['errors'] for x in results):>7}")
    per_req = med(results, "server_cpu_ms") + med(results, "wrk_cpu_ms")
    print(f"CPU per request under {connections} connections (server + wrk, median): {per_req:.2f} ms, so "
          f"{(os.cpu_count() or 1) * 1000 / per_req:.0f} req/s would saturate all {os.cpu_count()} cores "
          "if nothing else ran (a projection, not a measurement)")
    batches = health["batches"].get("current", {})
    if batches:
        print(f"micro-batching: {batches['items'] / max(batches['batches'], 1):.1f} requests per forward pass; "
              f"reloads {health['reloads']}, failed loads {health['failed_loads']}")
    if events:
        ev = health["events"]
        print(f"prompt events: {ev['delivered']} delivered, {ev['failed']} failed, {ev['dropped']} dropped, "
              f"{ev['queued']} queued at the end")
    if any(x["errors"] for x in results) or any(r["promoted_to"] not in {k.split("@")[-1] for k in r["served"]}
                                                for r in results):
        sys.exit(1)


def hop(n: int, rounds: int, layers: int | None = None) -> None:
    """CPU per single-prompt ORT int8 pass: back to back, after a sleep, two threads taking turns."""
    import queue
    import threading

    from foundation.settings import Settings
    from serving.ort_student import load_export
    from serving.testing import register_students
    from trainer import registry

    settings = Settings(data_dir=_scratch("toneflow-bench-hop-") / "data")
    layers = _default_depth(layers)
    [version] = register_students(settings, 1, layers)
    registry.store_export(settings, version)
    student = load_export(settings, version, int8=True, threads=1)
    assert student is not None
    prompts = [f"{PROMPTS[i % len(PROMPTS)]} {i}" for i in range(n)]

    class Worker(threading.Thread):
        def __init__(self) -> None:
            super().__init__(daemon=True)
            self.jobs: queue.SimpleQueue = queue.SimpleQueue()
            self.cpu = 0.0
            self.start()

        def run(self) -> None:
            while True:
                prompt, done = self.jobs.get()
                started = time.thread_time()
                student.predict([prompt])
                self.cpu += time.thread_time() - started
                done.set()

    workers = [Worker(), Worker()]

    def one(mode: str) -> float:
        for w in workers:
            w.cpu = 0.0
        for i, prompt in enumerate(prompts):
            w = workers[i % 2] if mode == "turns" else workers[0]
            done = threading.Event()
            w.jobs.put((prompt, done))
            done.wait()
            if mode != "back to back":
                time.sleep(0.001)
        return sum(w.cpu for w in workers) * 1000 / n

    modes = ("back to back", "1 ms sleep, same thread", "turns")
    runs: dict[str, list[float]] = {m: [] for m in modes}
    one("back to back")  # warm-up
    for _ in range(rounds):
        for m in modes:
            runs[m].append(one(m))
    print(f"ONNX int8 pass, one prompt, encoder layers {layers or 'all 6'}; CPU ms per pass (thread time), "
          f"median of {rounds} interleaved rounds of {n}; load average {os.getloadavg()[0]:.1f}")
    names = {"turns": "1 ms sleep, two threads taking turns"}
    for m in modes:
        print(f"{names.get(m, m):<40} {statistics.median(runs[m]):>7.3f}   " + " ".join(f"{x:.3f}" for x in runs[m]))


REAL_REQUESTS = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "real-requests" / "dev.tsv"


def _statistic(rgb, name: str) -> float:  # noqa: ANN001 - uint8 H x W x 3
    """The real-request set's statistics (its README): luma, chroma, warmth, contrast on RGB 0..255."""
    import numpy as np

    x = rgb.astype(np.float64)
    luma = 0.2126 * x[..., 0] + 0.7152 * x[..., 1] + 0.0722 * x[..., 2]
    if name == "luma":
        return float(luma.mean())
    if name == "contrast":
        return float(luma.std())
    if name == "warmth":
        return float((x[..., 0] - x[..., 2]).mean())
    return float((x.max(-1) - x.min(-1)).mean())  # chroma


def _directions(rows: list[tuple[str, str, str, float]], edits: list, photo, cache: dict) -> list[str]:  # noqa: ANN001
    """For each (prompt, statistic, direction, threshold) row: 'up', 'down' or 'none' — how the edit moved
    the statistic on the photo, by the row's threshold."""
    from editor.render import render_image

    out = []
    for (_, stat, _, threshold), edit in zip(rows, edits):
        key = (edit.canonical_json(), stat)
        if key not in cache:
            before, after = _statistic(photo, stat), _statistic(render_image(photo, edit), stat)
            change = (after - before) / max(before, 1e-9) if stat == "chroma" else (after - before) / 255
            cache[key] = "up" if change > threshold else "down" if change < -threshold else "none"
        out.append(cache[key])
    return out


_FFN_OUT = r"^/encoder/encoder/layer\.{}/output/dense/MatMul$"
_HEADS = [r"^/heads/", r"^/pooler/"]
# Each int8 candidate changes the stored form (trainer.quantize.ONNX_INT8) in one way; the stored file
# itself is the first ONNX int8 row. Patterns are trainer.quantize.fp32_node_names patterns. Round
# 11's table (docs/benchmarks.md) has the variations of the round-8 form tried before.
QUALITY_CANDIDATES: dict[str, dict] = {
    "round 8 form: layers 0-1 FFN out fp32, no split": {"fp32_nodes": [*_HEADS, _FFN_OUT.format("[01]")],
                                                        "outlier_channels": 0},
    "every encoder node int8, no split": {"fp32_nodes": _HEADS, "outlier_channels": 0},
    "every node, per-tensor (round 7)": {"per_channel": False, "fp32_nodes": [], "outlier_channels": 0},
    "4 outlier channels fp32": {"outlier_channels": 4},
    "32 outlier channels fp32": {"outlier_channels": 32},
    "64 outlier channels fp32": {"outlier_channels": 64},
    "16 outlier channels, FFN output projections only": {
        "outlier_nodes": [r"^/encoder/encoder/layer\.\d+/output/dense/MatMul$"]},
    "16 outlier channels, FFN input projections too": {
        "outlier_nodes": [r"^/encoder/encoder/layer\.\d+/((attention/)?output|intermediate)/dense/MatMul$"]},
}
# More phrasings for the held-out looks than for training: the unseen-intent set must be large
# enough that a 0.5-point difference is outside the noise of the paired difference.
_TEST_FRAMES = ("{p} style", "give it a {p} look", "{p} tones", "something {p}", "go {p}", "{p}, subtle",
                "{p} mood", "like {p}", "{p} colours", "edit: {p}", "{p} grade", "more {p}", "{p} effect",
                "turn it {p}", "{p} aesthetic", "a bit {p}")


def _row_stats(preds: list, refs: list):  # noqa: ANN202 - numpy (n, tools, 4): tp, fp, fn, quality of tp
    """Each row's share of ``trainer.metrics.score``'s counts, so that a resample's overall is a weighted sum."""
    import numpy as np

    from schemas.edit import TOOLS
    from trainer.metrics import _vectors, cosine

    out = np.zeros((len(preds), len(TOOLS), 4))
    for i, (pred, ref) in enumerate(zip(preds, refs, strict=True)):
        pu, ru = set(pred.canonical_dict()), set(ref.canonical_dict())
        for j, tool in enumerate(TOOLS):
            both = tool in pu and tool in ru
            out[i, j, :3] = both, tool in pu and tool not in ru, tool in ru and tool not in pu
            if both:
                out[i, j, 3] = (float(pred.filter.name == ref.filter.name) if tool == "filter"
                                else cosine(_vectors(tool, pred), _vectors(tool, ref)))
    return out


def _overall(stats, weights):  # noqa: ANN001, ANN202 - score().overall of the rows weighted by ``weights``
    import numpy as np

    tp, fp, fn, q = (np.einsum("n,nt->t", weights, stats[:, :, k]) for k in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(tp > 0, 2 * precision * recall / (precision + recall), 0.0)
        quality = np.where(tp > 0, q / tp, 0.0)
        final = np.where(f1 + quality > 0, 2 * f1 * quality / (f1 + quality), 0.0)
    return float(final.mean())


def _paired_se(pred_a: list, pred_b: list, refs: list, groups: list[str], draws: int, seed: int = 0) -> float:
    """Bootstrap standard error (points) of overall(pred_a) - overall(pred_b) against ``refs``, resampling
    whole ``groups`` (looks): the phrasings of one look are not independent rows."""
    import numpy as np

    from trainer.metrics import score

    a, b = _row_stats(pred_a, refs), _row_stats(pred_b, refs)
    ones = np.ones(len(refs))
    assert abs(_overall(a, ones) - score(pred_a, refs).overall) < 1e-9  # the weighted sum is score()'s overall
    keys = sorted(set(groups))
    member = np.array([[g == k for k in keys] for g in groups], dtype=float)  # rows x looks
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(draws):
        w = member @ np.bincount(rng.integers(0, len(keys), len(keys)), minlength=len(keys))
        diffs.append(100 * (_overall(a, w) - _overall(b, w)))
    return float(np.std(diffs))


def _interleaved_latency(variants: dict, timing_rounds: int, timing_calls: int) -> None:
    """Latency of every form of one student, interleaved so that the box's load hits them alike."""
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(timing_rounds):
        for name, model in variants.items():
            c: list[float] = []
            wall[name].append(statistics.median(time_calls(lambda p, m=model: m.predict([p]), timing_calls, cpu=c)))
            cpu[name].append(statistics.median(c))
    ref = "ONNX int8 stored (ONNX_INT8)"
    print(f"\nlatency per prompt, one thread, median of {timing_rounds} interleaved rounds of {timing_calls} calls "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"{'':40} {'p50 ms':>7} {'CPU ms':>7} {'CPU vs stored':>13}   rounds' p50")
    for name in variants:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<40} {w:>7.2f} {c:>7.2f} {c / statistics.median(cpu[ref]):>12.2f}x   "
              + " ".join(f"{x:.2f}" for x in wall[name]))


def quality(n_looks_test: int, layers: int = 0, seeds: tuple[int, ...] = (0,), draws: int = 200,
            timing_calls: int = 150, timing_rounds: int = 3, only: str = "", layer_pick: str = "first") -> None:
    """PyTorch eager vs PyTorch int8 vs ONNX Runtime fp32/int8 (each int8 candidate) on trained students.

    One student (frozen MiniLM + heads, minutes) per fit seed in ``seeds``, trained on offline-teacher
    labels of library looks; ``n_looks_test`` looks are held out whole (unseen intents, phrased 24
    ways). Per student and variant: overall against the teacher on the unseen looks and its paired
    difference to PyTorch eager in points (± the bootstrap standard error, looks resampled), on the
    real requests (../shared, skipped when absent) direction accuracy against the rule labels and the
    difference to eager in requests. Then, on the first student, every variant's p50 and CPU per
    prompt on one thread, interleaved in ``timing_rounds`` rounds, as a ratio to the stored int8 form.
    """
    import random
    import warnings

    import torch

    from editor.samples import sample_photo
    from foundation.onnx_graphs import load_tokenizer, token_feeds
    from foundation.settings import get_settings
    from serving.models import quantize
    from serving.ort_student import OrtStudent
    from teacher import get_teacher
    from teacher.library import load_library
    from trainer.data import make_example
    from trainer.metrics import score
    from trainer.onnx_export import export_student, session
    from trainer.quantize import CALIBRATION_PROMPTS, ONNX_INT8, onnx_int8
    from trainer.students.base import FitConfig
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    warnings.simplefilter("ignore")
    frames = ("{p}", "make it {p}", "{p} please", "a {p} look", "{p} vibe", "very {p}", "slightly {p}", "{p} feel")
    looks = [look.name for look in load_library().looks]
    random.Random(0).shuffle(looks)
    unseen = set(looks[:n_looks_test])
    rows = [(name, f.format(p=name)) for name in looks for f in (frames + _TEST_FRAMES if name in unseen else frames)]
    labels = get_teacher(get_settings(), "offline").label_sync([p for _, p in rows])
    examples = [(name, make_example(lab.prompt, lab.edit)) for (name, _), lab in zip(rows, labels) if lab.ok]
    train = [e for name, e in examples if name not in unseen]
    test = [(name, e) for name, e in examples if name in unseen]
    random.Random(1).shuffle(train)
    val, train = train[:len(train) // 8], train[len(train) // 8:]
    candidates = {name: kw for name, kw in QUALITY_CANDIDATES.items() if only in name}
    if not candidates:
        msg = f"no int8 candidate's name contains {only!r}; they are: {', '.join(QUALITY_CANDIDATES)}"
        raise SystemExit(msg)
    real = []
    if REAL_REQUESTS.exists():
        for line in REAL_REQUESTS.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            prompt, stat, direction, threshold = line.split("\t")
            real.append((prompt, stat, direction, float(threshold)))
    photo = sample_photo("astronaut")[::4, ::4].copy()
    cache: dict = {}
    groups, prompts_t, refs = [g for g, _ in test], [e.prompt for _, e in test], [e.edit_obj for _, e in test]
    print(f"{len(train)} train / {len(val)} val examples; unseen-intent test: {len(test)} prompts of {n_looks_test} "
          f"held-out looks; real requests: {len(real) or 'absent'}; seeds {list(seeds)}; stored form {ONNX_INT8}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for seed in seeds:
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        started = time.monotonic()
        student = MiniLMStudent(MiniLMConfig(finetune="frozen", warmup_epochs=60, layers=layers,
                                             layer_pick=layer_pick,  # type: ignore[arg-type]
                                             fit=FitConfig(progress=False, seed=seed)))
        student.fit(train, val)
        tmp = _scratch("toneflow-bench-quality-")
        student.save(tmp / "model")
        export_student(MiniLMStudent.load(tmp / "model"), tmp / "export")

        def ort(graph: str, tmp: Path = tmp) -> OrtStudent:
            s = OrtStudent(tmp / "model", tmp / "export", int8=False)
            s.session = session(tmp / "export" / graph)
            return s

        tokenizer, pad = load_tokenizer(tmp / "model" / "encoder" / "tokenizer.json", student.cfg.max_length)
        calibration = token_feeds(tokenizer, pad, CALIBRATION_PROMPTS)
        for i, kw in enumerate(candidates.values()):
            onnx_int8(tmp / "export" / "student.onnx", tmp / "export" / f"cand{i}.onnx", calibration=calibration, **kw)
        int8_torch = MiniLMStudent.load(tmp / "model")
        quantize(int8_torch)
        variants = {"PyTorch eager": student, "PyTorch int8 dynamic": int8_torch, "ONNX fp32": ort("student.onnx"),
                    "ONNX int8 stored (ONNX_INT8)": ort("student.int8.onnx")}
        variants |= {f"int8 {name}": ort(f"cand{i}.onnx") for i, name in enumerate(candidates)}
        torch.set_num_threads(1)
        base_edits = student.predict(prompts_t)
        base_dirs = _directions(real, student.predict([r[0] for r in real]), photo, cache) if real else []
        base_acc = sum(d == r[2] for d, r in zip(base_dirs, real))
        print(f"\nstudent seed {seed} ({time.monotonic() - started:.0f} s to train and export; encoder layers "
              f"{student.encoder.config.num_hidden_layers}; load average {os.getloadavg()[0]:.1f})", flush=True)
        print(f"{'':40} {'unseen':>7} {'Δ pts':>6} {'± SE':>5} {'vs eager':>8} {'same tools':>10} "
              f"{'real dir':>8} {'Δ req':>5} {'dir = eager':>11}")
        for name, model in variants.items():
            try:
                edits = model.predict(prompts_t)
            except Exception as err:  # noqa: BLE001 - one form ONNX Runtime cannot run must not hide the others
                print(f"{name:<40} cannot run in ONNX Runtime: {type(err).__name__}: {str(err)[:160]}")
                continue
            overall = score(edits, refs).overall
            delta = 100 * (overall - score(base_edits, refs).overall)
            se = _paired_se(edits, base_edits, refs, groups, draws) if model is not student else 0.0
            line = (f"{name:<40} {overall:>7.4f} {delta:>+6.2f} {se:>5.2f} {score(edits, base_edits).overall:>8.4f} "
                    f"{sum(_tools(a) == _tools(b) for a, b in zip(edits, base_edits)) / len(test):>10.1%}")
            if real:
                dirs = _directions(real, model.predict([r[0] for r in real]), photo, cache)
                acc = sum(d == r[2] for d, r in zip(dirs, real))
                agree = sum(a == b for a, b in zip(dirs, base_dirs)) / len(real)
                line += f" {acc / len(real):>8.1%} {acc - base_acc:>+5d} {agree:>11.1%}"
            print(line, flush=True)
        if seed == seeds[0]:
            _interleaved_latency(variants, timing_rounds, timing_calls)


def _tools(edit) -> tuple:  # noqa: ANN001
    """The tools an edit uses and its filter name: what a user sees first."""
    used = edit.canonical_dict()
    return tuple(sorted(used)), (used.get("filter") or {}).get("name")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency", help="student vs teacher, one request at a time")
    lat.add_argument("--n", type=int, default=300)
    lat.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median round is shown")
    lat.add_argument("--layers", type=int, default=None,
                     help="without a registry model: the untrained student's encoder layers (default: the training "
                          "default's, 3; 0 = all 6)")
    de = sub.add_parser("depth", help="ORT int8 p50 and CPU per prompt at each encoder depth")
    de.add_argument("--n", type=int, default=300)
    de.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median round is shown")
    de.add_argument("--layers", default="6,5,4,3", help="comma-separated encoder depths")
    qu = sub.add_parser("quality", help="ONNX / int8 forms vs PyTorch eager on a quickly trained student")
    qu.add_argument("--looks-test", type=int, default=30, help="library looks held out whole (unseen intents)")
    qu.add_argument("--layers", type=int, default=0, help="keep N of the encoder's layers (0 = all 6)")
    qu.add_argument("--layer-pick", choices=("first", "spread"), default="first",
                    help="which N layers (trainer/students/minilm.py keep_layers; training's default is "
                         "spread)")
    qu.add_argument("--seeds", default="0", help="comma-separated fit seeds: one trained student each")
    qu.add_argument("--draws", type=int, default=200, help="bootstrap draws for the standard error")
    qu.add_argument("--timing-calls", type=int, default=150)
    qu.add_argument("--only", default="", help="run only the int8 candidates whose name contains this text")
    hp = sub.add_parser("hop", help="CPU of one int8 pass: back to back, after a sleep, threads taking turns")
    hp.add_argument("--n", type=int, default=300)
    hp.add_argument("--rounds", type=int, default=4)
    hp.add_argument("--layers", type=int, default=None,
                    help="encoder layers of the student (0 = all 6; default: the training default's)")
    ht = sub.add_parser("http", help="the HTTP API under wrk, with a promotion mid-run")
    ht.add_argument("--connections", type=int, default=32)
    ht.add_argument("--seconds", type=float, default=20.0)
    ht.add_argument("--rounds", type=int, default=3)
    ht.add_argument("--threads", type=int, default=1, help="wrk threads")
    ht.add_argument("--sequential-seconds", type=float, default=5.0, help="the one-connection run of each round")
    ht.add_argument("--quick", action="store_true", help="1 round of 8 s")
    ht.add_argument("--events", action="store_true", help="emit prompt events to an embedded broker (as in production)")
    ht.add_argument("--layers", type=int, default=None,
                    help="serve students with N encoder layers (0 = all 6; default: the training default's)")
    args = parser.parse_args()
    if args.what == "latency":
        latency(args.n, args.rounds, args.layers)
    elif args.what == "depth":
        depth(args.n, args.rounds, [int(x) for x in args.layers.split(",")])
    elif args.what == "hop":
        hop(args.n, args.rounds, args.layers)
    elif args.what == "quality":
        quality(args.looks_test, args.layers, tuple(int(x) for x in args.seeds.split(",")), args.draws,
                args.timing_calls, only=args.only, layer_pick=args.layer_pick)
    else:
        rounds, seconds = (1, 8.0) if args.quick else (args.rounds, args.seconds)
        http(args.connections, seconds, rounds, args.threads, args.sequential_seconds, args.events, args.layers)

if __name__ == "__main__":
    main()

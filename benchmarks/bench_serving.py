"""Serving latency: the student vs the teacher per request, and the HTTP API under concurrent load.

    .venv/bin/python benchmarks/bench_serving.py latency            # student variants vs offline teacher
    .venv/bin/python benchmarks/bench_serving.py quality            # int8 vs eager on a quickly trained student
    .venv/bin/python benchmarks/bench_serving.py http --quick       # 10 clients, 10 s
    .venv/bin/python benchmarks/bench_serving.py http --clients 50 --seconds 60 --promote-during-load

``latency`` times one prompt per call (what a user waits for, minus HTTP) for the MiniLM student
in PyTorch eager with all cores and with 1 thread, dynamically int8-quantised, and the teacher
(offline here; the OpenAI teacher too when TONEFLOW_OPENAI_API_KEY is set), all in one run, and
prints p50/p95/p99 and the teacher/student ratio. The student is the registry's `current` model
when TONEFLOW_DATA_DIR has one, else an untrained MiniLM (same architecture, same cost).

``http`` starts `toneflow serve` as a subprocess on a temp registry with two MiniLM versions,
drives it with N concurrent asyncio clients for T seconds (distinct users and prompts) and prints
requests/s, p50/p95/p99 and errors (``--events`` also starts the embedded broker and emits every
prompt event, as production does); ``--promote-during-load`` promotes the other version half-way
and reports the versions served and the failed requests (must be 0). Numbers on a shared 2-core box
are noisy: run it twice and quote medians.
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
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPTS = ("golden hour", "Morocco", "make it moodier", "cool morning in the mountains", "film noir",
           "lush greens", "faded summer polaroid", "teal and orange blockbuster", "soft pastel wedding",
           "Tokyo streets at night", "bleach bypass", "warm autumn forest")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def summary(name: str, ms: list[float]) -> dict[str, float | str]:
    return {"name": name, "n": len(ms), "p50": statistics.median(ms), "p95": pct(ms, 95), "p99": pct(ms, 99)}


def time_calls(fn, n: int, warmup: int = 10) -> list[float]:  # noqa: ANN001
    for i in range(warmup):
        fn(PROMPTS[i % len(PROMPTS)])
    out = []
    for i in range(n):
        prompt = f"{PROMPTS[i % len(PROMPTS)]} {i}"  # never the same string twice: no cache can help
        start = time.perf_counter()
        fn(prompt)
        out.append((time.perf_counter() - start) * 1000)
    return out


def latency(n: int) -> None:
    import torch

    from foundation.settings import get_settings
    from serving.models import quantize
    from teacher import get_teacher
    from trainer.registry import load_student, read_current
    from trainer.students.minilm import MiniLMStudent

    settings = get_settings()
    student = load_student(settings) if read_current(settings) else MiniLMStudent()
    label = f"student {student.name}@{student.version or 'untrained'}"
    rows = []
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    rows.append(summary(f"{label} eager, {cores} threads", time_calls(lambda p: student.predict([p]), n)))
    torch.set_num_threads(1)
    rows.append(summary(f"{label} eager, 1 thread", time_calls(lambda p: student.predict([p]), n)))
    eager = student.encoder
    quantize(student)
    rows.append(summary(f"{label} int8 dynamic, 1 thread", time_calls(lambda p: student.predict([p]), n)))
    student.encoder = eager
    torch.set_num_threads(cores)
    teachers = [("offline", get_teacher(settings, "offline"))]
    if settings.openai_api_key is not None:
        teachers.append(("openai", get_teacher(settings, "openai")))
    for name, teacher in teachers:
        rows.append(summary(f"teacher {name} ({teacher.version})",
                            time_calls(lambda p, t=teacher: asyncio.run(t.label([p])), n if name == "offline" else 20)))
    base = min(r["p50"] for r in rows if str(r["name"]).startswith("student"))
    print(f"{'':54} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p50 / best student':>19}")
    for r in rows:
        print(f"{r['name']:<54} {r['n']:>5} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f} {r['p50'] / base:>18.1f}x")


async def _client(url: str, n: int, stop_at: float, lat: list[float], versions: Counter, errors: Counter) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            body = {"prompt": f"{PROMPTS[(n + i) % len(PROMPTS)]} {i}", "project_id": f"p{n}-{i}", "user_id": f"u{n}"}
            start = time.perf_counter()
            try:
                r = await client.post("/v1/edit", json=body)
                if r.status_code == 200:
                    lat.append((time.perf_counter() - start) * 1000)
                    versions[r.json()["served_by"]["version"]] += 1
                else:
                    errors[f"http {r.status_code}"] += 1
            except httpx.HTTPError as err:
                errors[type(err).__name__] += 1


async def _load(url: str, clients: int, seconds: float, promote_at: float | None, promote) -> tuple:  # noqa: ANN001
    lat: list[float] = []
    versions: Counter = Counter()
    errors: Counter = Counter()
    start = time.monotonic()
    tasks = [asyncio.create_task(_client(url, n, start + seconds, lat, versions, errors)) for n in range(clients)]
    if promote_at is not None:
        await asyncio.sleep(promote_at)
        await asyncio.to_thread(promote)
    await asyncio.gather(*tasks)
    return lat, versions, errors, time.monotonic() - start


def http(clients: int, seconds: float, promote_during_load: bool, events: bool) -> None:
    import httpx

    from foundation import broker
    from foundation.settings import Settings
    from serving.testing import free_port, register_students
    from trainer import registry

    data = Path(tempfile.mkdtemp(prefix="toneflow-bench-serving-")) / "data"
    settings = Settings(data_dir=data)
    v1, v2 = register_students(settings, 2)
    registry.promote(settings, v1)
    port = free_port()
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(data), "TONEFLOW_SERVE_EMIT_EVENTS": str(events).lower()}
    from schemas.events import TOPICS

    if events:  # the embedded broker in the same data dir; the server finds it through its state file
        broker.start(settings, TOPICS)
    server = subprocess.Popen([sys.executable, "-m", "toneflow", "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        asyncio.run(_load(url, 2, 2.0, None, None))  # warm-up, not counted
        promote_at = seconds / 2 if promote_during_load else None
        lat, versions, errors, wall = asyncio.run(
            _load(url, clients, seconds, promote_at, lambda: registry.promote(settings, v2, force=True)))
        health = httpx.get(f"{url}/healthz", timeout=5).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
        if events:
            broker.stop(settings)
    ok, failed = len(lat), sum(errors.values())
    print(f"{clients} clients x {seconds:.0f} s: {ok} ok, {failed} failed {dict(errors) or ''}, "
          f"{ok / wall:.0f} req/s; latency p50 {statistics.median(lat):.1f} ms, p95 {pct(lat, 95):.1f} ms, "
          f"p99 {pct(lat, 99):.1f} ms")
    batches = health["batches"].get("current", {})
    if batches:
        print(f"micro-batching: {batches['items'] / max(batches['batches'], 1):.1f} requests per forward pass")
    if events:
        ev = health["events"]
        print(f"prompt events: {ev['delivered']} delivered, {ev['failed']} failed, {ev['dropped']} dropped, "
              f"{ev['queued']} queued at the end")
    if promote_during_load:
        print(f"promoted {v1} -> {v2} at {seconds / 2:.0f} s: served versions {dict(versions)}; failed requests {failed}")
        if failed or v2 not in versions:
            sys.exit(1)


def quality(n_test: int) -> None:
    """int8 vs eager on a student trained (heads only, minutes) on offline-teacher labels of library looks."""
    import random
    import warnings

    import torch

    from foundation.settings import get_settings
    from serving.models import quantize
    from teacher import get_teacher
    from teacher.library import load_library
    from trainer.data import make_example
    from trainer.metrics import score
    from trainer.students.base import FitConfig
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    warnings.simplefilter("ignore")
    frames = ("{p}", "make it {p}", "{p} please", "a {p} look", "{p} vibe", "very {p}", "slightly {p}", "{p} feel")
    prompts = [f.format(p=look.name) for look in load_library().looks for f in frames]
    random.Random(0).shuffle(prompts)
    labels = get_teacher(get_settings(), "offline").label_sync(prompts)
    examples = [make_example(lab.prompt, lab.edit) for lab in labels if lab.ok]
    train, test = examples[:-n_test], examples[-n_test:]
    student = MiniLMStudent(MiniLMConfig(finetune="frozen", warmup_epochs=60, fit=FitConfig(progress=False)))
    student.fit(train, test[: n_test // 3])
    prompts_t, refs = [e.prompt for e in test], [e.edit_obj for e in test]
    torch.set_num_threads(1)
    eager = student.predict(prompts_t)
    quantize(student)
    int8 = student.predict(prompts_t)
    print(f"{len(train)} train / {len(test)} test (teacher labels). overall vs teacher: eager "
          f"{score(eager, refs).overall:.3f}, int8 {score(int8, refs).overall:.3f}; int8 vs eager "
          f"{score(int8, eager).overall:.3f}; identical edits {sum(a == b for a, b in zip(int8, eager)) / len(test):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency", help="student vs teacher, one request at a time")
    lat.add_argument("--n", type=int, default=300)
    qu = sub.add_parser("quality", help="int8 vs eager agreement on a quickly trained student")
    qu.add_argument("--n-test", type=int, default=300)
    ht = sub.add_parser("http", help="the HTTP API under concurrent clients")
    ht.add_argument("--clients", type=int, default=50)
    ht.add_argument("--seconds", type=float, default=60.0)
    ht.add_argument("--quick", action="store_true", help="10 clients for 10 s")
    ht.add_argument("--promote-during-load", action="store_true")
    ht.add_argument("--events", action="store_true", help="emit prompt events to an embedded broker (as in production)")
    args = parser.parse_args()
    if args.what == "latency":
        latency(args.n)
    elif args.what == "quality":
        quality(args.n_test)
    else:
        clients, seconds = (10, 10.0) if args.quick else (args.clients, args.seconds)
        http(clients, seconds, args.promote_during_load, args.events)


if __name__ == "__main__":
    main()

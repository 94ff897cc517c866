"""The labeler against a slow teacher: labels/s with N teacher requests in flight.

    .venv/bin/python benchmarks/bench_labeler.py --prompts 1500 --latency 1.0 --in-flight 64

A local OpenAI-compatible server (threaded, on this machine) answers every chat completion after
``--latency`` seconds. A fresh embedded broker gets ``--prompts`` prompts with distinct texts that
the teacher has not served (so each one needs a request); then `toneflow worker` runs with the
openai teacher pointed at the server, ``TONEFLOW_TEACHER_CONCURRENCY`` and
``TONEFLOW_LABEL_IN_FLIGHT`` set to ``--in-flight``. The clock runs from the first label in the
warehouse to the last. Then ``--hits`` prompts whose texts the teacher has cached are sent behind
a fresh backlog of misses, and the table says how long the cached ones took to be labelled.
Each run starts with the worker's imports done; the machine may be shared (see the load average).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foundation import broker  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from schemas.events import TOPICS, PromptEvent  # noqa: E402
from streams.producer import EventProducer  # noqa: E402
from tests.streams_harness import count, start_worker, stop, wait_for  # noqa: E402


def serve(latency: float, port_file: str) -> None:
    """The slow teacher, in its own process so the benchmark's polling does not slow its answers."""
    seen = {"requests": 0, "max_in_flight": 0, "in_flight": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            data = json.dumps(seen).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            with lock:
                seen["requests"] += 1
                seen["in_flight"] += 1
                seen["max_in_flight"] = max(seen["max_in_flight"], seen["in_flight"])
            time.sleep(latency)
            prompt = body["messages"][-1]["content"]
            edit = {"adjust": {"temperature": len(prompt) % 60 + 1, "contrast": 10}}
            payload = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": json.dumps(edit)}}],
                       "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
            data = json.dumps(payload).encode()
            with lock:
                seen["in_flight"] -= 1
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_port))
    server.serve_forever()


def slow_server(latency: float, root: Path) -> tuple[multiprocessing.Process, int]:
    port_file = root / "teacher.port"
    proc = multiprocessing.Process(target=serve, args=(latency, str(port_file)), daemon=True)
    proc.start()
    wait_for(port_file.exists, 20, "the teacher server", poll=0.05)
    return proc, int(port_file.read_text())


def server_stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as resp:
        return json.loads(resp.read())


def send_prompts(settings: Settings, texts: list[str], tag: str) -> list[str]:
    ids = []
    with EventProducer(settings) as producer:
        for i, text in enumerate(texts):
            event = PromptEvent(event_id=f"{tag}-{i}", project_id=f"{tag}-p{i}", user_id="u", ts=datetime.now(UTC),
                                prompt=text)
            producer.send_prompt(event)
            ids.append(event.event_id)
    return ids


def one_run(args: argparse.Namespace, run: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="toneflow-bench-labeler-"))
    own = Settings(data_dir=root / "broker")
    state = broker.start(own, TOPICS)
    server, port = slow_server(args.latency, root)
    os.environ.update({"TONEFLOW_TEACHER": "openai", "TONEFLOW_OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
                       "TONEFLOW_OPENAI_API_KEY": "sk-local", "TONEFLOW_TEACHER_CONCURRENCY": str(args.in_flight),
                       "TONEFLOW_LABEL_IN_FLIGHT": str(args.in_flight), "TONEFLOW_TEACHER_TIMEOUT_S": "30"})
    worker = None
    try:
        settings = Settings(data_dir=root / "data", kafka_bootstrap=state.bootstrap)
        misses = [f"look number {run}-{i}: warm golden light" for i in range(args.prompts)]
        send_prompts(settings, misses, f"m{run}")
        worker = start_worker(settings, root / "worker.log")
        wait_for(lambda: count(settings, "SELECT count(*) FROM labels") > 0, 180, "the first label", poll=0.05)
        started = time.perf_counter()
        wait_for(lambda: count(settings, "SELECT count(*) FROM labels") >= args.prompts, 600, "every label", poll=0.25)
        rate = args.prompts / (time.perf_counter() - started)
        # Cached texts behind a new backlog of misses: the cached ones must not wait for them.
        backlog = [f"late look {run}-{i}" for i in range(args.in_flight * 4)]
        send_prompts(settings, backlog, f"b{run}")
        hits = send_prompts(settings, misses[: args.hits], f"h{run}")
        sent = time.perf_counter()
        in_clause = ",".join(f"'{h}'" for h in hits)
        wait_for(lambda: count(settings, f"SELECT count(*) FROM labels WHERE event_id IN ({in_clause})") >= len(hits),
                 300, "the cached prompts", poll=0.1)
        hits_s = time.perf_counter() - sent
        backlog_done = count(settings, "SELECT count(*) FROM labels WHERE event_id LIKE 'b%'")
        return {"rate": rate, "max_in_flight": server_stats(port)["max_in_flight"], "hits_s": hits_s,
                "backlog_done": backlog_done, "backlog": len(backlog)}
    finally:
        if worker is not None:
            stop(worker)
        server.terminate()
        broker.stop(own)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=1500)
    ap.add_argument("--latency", type=float, default=1.0, help="seconds the server takes per request")
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--hits", type=int, default=50, help="cached prompts sent behind a backlog of misses")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    results = []
    for run in range(args.runs):
        results.append(one_run(args, run))
        r = results[-1]
        print(f"run {run + 1}: {r['rate']:.1f} labels/s, server saw at most {r['max_in_flight']:.0f} in flight; "
              f"{args.hits} cached prompts labelled {r['hits_s']:.2f} s after sending, when "
              f"{r['backlog_done']:.0f}/{r['backlog']:.0f} of the misses ahead of them were done")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores, shared)")
    print()
    print(f"| teacher latency | in flight | labels/s (median of {args.runs}) | ideal | cached prompts labelled after |")
    print("|---|---|---|---|---|")
    print(f"| {args.latency:.1f} s | {args.in_flight} | {statistics.median(r['rate'] for r in results):.1f} | "
          f"{args.in_flight / args.latency:.0f} | {statistics.median(r['hits_s'] for r in results):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

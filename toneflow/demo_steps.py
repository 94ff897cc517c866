"""The steps of ``toneflow demo``; see ``toneflow.demo`` for the story."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from foundation.broker_state import free_port
from foundation.errors import ToneflowError
from foundation.settings import Settings
from streams.simulator import SERVED_TEMPERATURE
from toneflow.demo_support import DemoPlan, Processes, say, wait_for

STEPS = 7
MAX_AB_ROUNDS = 3  # more A/B rounds while the gate says keep_collecting
# A 5-point non-inferiority margin lets the gate decide within a demo-sized sample; production
# keeps the tighter default (TONEFLOW_ROLLOUT_MARGIN). benchmarks/bench_completion.py prints its bar.
DEMO_ROLLOUT_MARGIN = 0.05


class Demo:
    def __init__(self, root: Path, bootstrap: str, plan: DemoPlan, procs: Processes) -> None:
        self.root, self.plan, self.procs = root, plan, procs
        overrides: dict[str, Any] = {
            "data_dir": root, "kafka_bootstrap": bootstrap, "retrain_threshold": plan.retrain_threshold,
            "retrain_min_interval_s": 0, "trigger_check_s": 2, "seed": plan.seed,
            # Without a plan file the server splits users between the teacher (the champion) and the
            # current student by this share; the online gate then compares the two.
            "serve_student_share": plan.student_share,
            # Decide once both arms have most of the A/B phase's projects.
            "rollout_min_sample": max(50, int(plan.ab_projects * min(plan.student_share, 1 - plan.student_share) * 0.8)),
            "rollout_margin": DEMO_ROLLOUT_MARGIN,
            # The teacher arm answers like the teacher that served phase 1: an LLM-like, noisy teacher.
            "teacher_temperature": SERVED_TEMPERATURE,
        }
        self.settings = Settings(**overrides)
        self.env = {**os.environ, **{Settings.env_name(k): str(v) for k, v in overrides.items()},
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.url = ""
        self.facts: dict[str, Any] = {}

    # -- helpers -----------------------------------------------------------------------------
    def toneflow(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run([sys.executable, "-m", "toneflow", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            msg = f"`toneflow {' '.join(args)}` failed: {(done.stderr or done.stdout).strip()[-400:]}"
            raise ToneflowError(msg)
        return done.stdout

    def count(self, sql: str) -> int:
        from warehouse.catalog import connect

        try:
            row = connect(self.settings).execute(sql).fetchone()
            return int(row[0]) if row else 0
        except Exception:  # noqa: BLE001 - a file mid-rename: ask again next poll
            return 0

    # -- the story ----------------------------------------------------------------------------
    def run(self) -> int:
        say(1, STEPS, f"embedded broker at {self.settings.kafka_bootstrap}; starting the stream worker and "
                      "the trainer service")
        self.procs.start("worker", ["worker"], self.env, self.logs / "worker.log")
        self.procs.start("trainer", ["trainer", "--max-minutes", f"{self.plan.train_minutes:g}"], self.env,
                         self.logs / "trainer.log")
        self.teacher_traffic()
        self.first_student()
        self.serve()
        self.ab_traffic()
        self.online_gate()
        say(7, STEPS, "report")
        from toneflow.demo_report import write_report

        path = write_report(self)
        print(path.read_text())
        return 0

    def teacher_traffic(self) -> None:
        from streams.simulator import plan_traffic, send, write_manifest

        n = self.plan.teacher_projects
        say(2, STEPS, f"app traffic served by the teacher: {n} simulated projects (offline teacher)")
        # Variant "baseline": before the experiment, so the A/B arms count only A/B traffic.
        plan = plan_traffic(self.settings, n, self.plan.seed, malformed=n // 100, variant="baseline")
        write_manifest(self.settings, plan, self.plan.seed)
        sent = send(self.settings, plan)
        self.facts["phase1"] = {"events": sent, "projects": n, "exports": plan.exports,
                                "malformed": plan.malformed, "expected_accepted": len(plan.expected_accepted)}
        print(f"sent {sent} events ({plan.exports} exported projects, {plan.malformed} malformed records); "
              "waiting for the worker to label, join and sink them")
        target = len(plan.expected_accepted)
        wait_for(lambda: self.count("SELECT count(*) FROM accepted_examples") >= target, 600,
                 f"{target} accepted examples", self.procs, poll=2.0)
        print(f"accepted_examples: {self.count('SELECT count(*) FROM accepted_examples')} rows "
              f"(expected {target}); DLQ: {self.count('SELECT count(*) FROM dlq')} rows")

    def first_student(self) -> None:
        from streams.trigger import load_state
        from trainer.registry import read_current

        say(3, STEPS, f"retrain trigger (threshold {self.plan.retrain_threshold} new accepted examples) → "
                      "toneflow.retrain → the trainer service (`toneflow trainer`)")
        fired = wait_for(lambda: load_state(self.settings)["fired"], 60, "the retrain trigger", self.procs)
        trigger_id = fired[-1]
        print(f"the worker fired trigger {trigger_id} on toneflow.retrain")
        log = self.logs / "trainer.log"

        def service_line(what: str) -> str | None:
            text = log.read_text(errors="replace") if log.exists() else ""
            return next((ln for ln in text.splitlines() if ln.startswith(f"trainer: trigger {trigger_id} {what}")),
                        None)

        received = wait_for(lambda: service_line("received"), 120, f"the trainer service to receive {trigger_id}",
                            self.procs)
        print(f"  {received}")
        print(f"  training (budget {self.plan.train_minutes:g} min, log: {log})")
        self.facts["trigger"] = {"id": trigger_id, "received": received}
        last_shown = [0.0]

        def trained() -> Any:
            if time.monotonic() - last_shown[0] > 20 and log.exists():
                tail = log.read_text(errors="replace").replace("\r", "\n").strip().splitlines()
                if tail:
                    print(f"  train: {tail[-1][:150]}", flush=True)
                last_shown[0] = time.monotonic()
            return read_current(self.settings)

        current = wait_for(trained, self.plan.train_minutes * 60 + 600, "a promoted student", self.procs, poll=2)
        result = wait_for(lambda: service_line("trained") or service_line("recovered"), 120,
                          f"the trainer service's result for {trigger_id}", self.procs)
        print(f"  {result}")
        self.facts["trigger"]["result"] = result
        self.facts["current"] = current
        print(f"promoted: {json.dumps(current)[:200]}")

    def serve(self) -> None:
        import httpx

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        say(4, STEPS, f"toneflow serve on {self.url}; the student gets {self.plan.student_share:.0%} of users")
        self.procs.start("server", ["serve", "--host", "127.0.0.1", "--port", str(port)], self.env,
                         self.logs / "server.log")

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 180, "the server to answer /healthz", self.procs)
        print(self.toneflow("rollout", "status").strip())

    def ab_traffic(self, round_no: int = 1) -> None:
        from streams.ab_traffic import run_ab_traffic

        n = self.plan.ab_projects
        say(5, STEPS, f"A/B traffic through the API: {n} simulated projects (round {round_no})")
        exports_sql = "SELECT count(*) FROM exports WHERE project_id LIKE 'ab-%'"
        prompts_sql = "SELECT count(*) FROM prompts WHERE project_id LIKE 'ab-%'"
        exports_before, prompts_before = self.count(exports_sql), self.count(prompts_sql)
        result = run_ab_traffic(self.settings, self.url, n, self.plan.seed + round_no)
        ab = self.facts.setdefault("ab", {"requests": 0, "failed": 0})
        ab["requests"] += result.requests
        ab["failed"] += result.failed
        for variant, (served, exported) in sorted(result.by_variant.items()):
            print(f"  {variant:<10} served {served:>5}  exported {exported:>5}")
        if result.failed:
            print(f"  {result.failed} requests failed")
        served = result.requests - result.failed
        wait_for(lambda: self.count(exports_sql) >= exports_before + result.exports
                 and self.count(prompts_sql) >= prompts_before + served, 300, "the A/B events in the warehouse",
                 self.procs)

    def online_gate(self) -> None:
        for round_no in range(1, MAX_AB_ROUNDS + 1):
            if round_no > 1:
                self.ab_traffic(round_no)
            say(6, STEPS, "online gate: is the student's completion rate significantly not worse than the teacher's?")
            out = self.toneflow("rollout", "step").strip()
            self.facts["rollout"] = out
            print(out)
            if not out.startswith("keep_collecting"):
                break
        print(self.toneflow("rollout", "status").strip())

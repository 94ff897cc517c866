"""Broker bounces under acceptance-sized traffic: the worker recovers or is seen stalled, nothing is lost.

    PYTHONPATH=. .venv/bin/python -m tests.bounce_harness --projects 2000 --malformed 500 --cuts 3

An embedded broker whose advertised address is a fault proxy (tests/fault_proxy.py), so that every
client (the worker, its watchdog, the simulator) talks to it through the proxy; ``toneflow worker``
runs under a small supervisor that restarts it whenever it exits, as compose's ``restart:`` does.
While the simulator sends (scripts/acceptance_streams.py's sizes), the proxy cuts every connection
and refuses new ones for ``--cut-s`` seconds, ``--cuts`` times. Then the warehouse is compared
with the simulator's manifest, and the stalls are accounted for:

- a *stall exit* is the worker leaving with STALL_EXIT_CODE; its *detection delay* is measured from
  the last moment the pipeline could be expected to move: the latest of the last new Parquet file,
  the end of the last cut and the worker's start;
- the *longest unnoticed stall* is the longest such stretch while a live worker had unprocessed
  records and no file appeared. A stall the watchdog misses shows here (or as a pipeline that never
  drains); ``tests/test_broker_bounces.py`` fails on either.

Progress is judged from the warehouse files, not from the offsets the watchdog reads, so the two do
not share a blind spot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from foundation import broker
from foundation.settings import Settings
from streams.liveness import STALL_EXIT_CODE, status_path
from streams.simulator import plan_traffic, send, write_manifest
from streams.topics import worker_topics
from tests.fault_proxy import Cut, FaultProxy
from tests.streams_harness import count, start_worker, stop, wait_for
from warehouse.audit import audit
from warehouse.catalog import connect


@dataclass
class WorkerExit:
    code: int
    started: float      # time.monotonic() of the worker's start
    ended: float
    quiet_since: float  # the latest of: last new file, end of the last cut, the worker's start
    status: str         # the worker's last status message

    @property
    def detection_s(self) -> float:
        return self.ended - self.quiet_since


@dataclass
class BounceReport:
    expected: int = 0
    accepted_rows: int = 0
    missing: int = 0
    unexpected: int = 0
    duplicates: int = 0
    labels: int = 0
    projects: int = 0
    dlq_malformed: int = 0
    malformed: int = 0
    audit_missing: int = 0
    audit_ahead: int = 0
    cuts: list[Cut] = field(default_factory=list)
    exits: list[WorkerExit] = field(default_factory=list)
    longest_unnoticed_s: float = 0.0
    send_error: str = ""
    refused: int = 0
    wall_s: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def stall_exits(self) -> list[WorkerExit]:
        return [e for e in self.exits if e.code == STALL_EXIT_CODE]

    def lines(self) -> list[str]:
        rows = [
            ("expected accepted (manifest)", self.expected),
            ("accepted_examples rows", self.accepted_rows),
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("duplicate event_ids in view", self.duplicates),
            ("labels (valid prompts)", f"{self.labels} / {self.projects}"),
            ("DLQ malformed", f"{self.dlq_malformed} / {self.malformed}"),
            ("audit: missing offsets / rows ahead", f"{self.audit_missing} / {self.audit_ahead}"),
            ("broker cuts (s each, connections reset)", ", ".join(f"{c.ended - c.started:.1f} s, {c.reset}"
                                                              for c in self.cuts)),
            ("connections refused during cuts", self.refused),
            ("worker exits (code after s)", ", ".join(f"{e.code} after {e.ended - e.started:.0f}" for e in self.exits)
             or "none"),
            ("stalls detected", len(self.stall_exits)),
            ("detection delays (s)", ", ".join(f"{e.detection_s:.1f}" for e in self.stall_exits) or "-"),
            ("longest unnoticed stall (s)", f"{self.longest_unnoticed_s:.1f}"),
            ("wall time", f"{self.wall_s:.0f} s"),
            ("load average at the end", " ".join(f"{x:.2f}" for x in self.load)),
        ]
        width = max(len(r[0]) for r in rows)
        return [f"{name:<{width}}  {value}" for name, value in rows]


class Supervisor:
    """Runs ``toneflow worker`` and restarts it whenever it exits; watches the warehouse for progress."""

    def __init__(self, settings: Settings, log: Path, proxy: FaultProxy, pending: Callable[[], bool]) -> None:
        self.settings, self.log, self.proxy, self.pending = settings, log, proxy, pending
        self.exits: list[WorkerExit] = []
        self.longest_unnoticed_s = 0.0
        self._files = 0
        self.last_file_at = time.monotonic()
        self._stop = threading.Event()
        self.worker = start_worker(settings, log)
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def _file_count(self) -> int:
        return sum(1 for p in (self.settings.data_path / "warehouse").glob("*/*/*.parquet") if not p.name.startswith("."))

    def quiet_since(self, now: float) -> float:
        cut_end = max((c.ended for c in self.proxy.cuts), default=0.0)
        if self.proxy.cutting:
            cut_end = now
        return max(self.last_file_at, cut_end, self.started)

    def _run(self) -> None:
        checked_pending = 0.0
        while not self._stop.wait(0.5):
            now = time.monotonic()
            files = self._file_count()
            if files != self._files:
                self._files, self.last_file_at = files, now
            code = self.worker.poll()
            if code is not None:
                status = ""
                try:
                    status = json.loads(status_path(self.settings).read_text()).get("message", "")
                except (OSError, ValueError):
                    pass
                self.exits.append(WorkerExit(code=code, started=self.started, ended=now,
                                             quiet_since=self.quiet_since(now), status=status))
                self.worker = start_worker(self.settings, self.log)
                self.started = time.monotonic()
                continue
            quiet = now - self.quiet_since(now)
            # Asking the warehouse whether work is left costs a query; only when it could matter.
            if quiet > self.longest_unnoticed_s and quiet > 5 and now - checked_pending > 2:
                checked_pending = now
                if self.pending():
                    self.longest_unnoticed_s = quiet

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        stop(self.worker)


def run_bounces(root: Path, *, projects: int = 2000, seed: int = 1, malformed: int = 500, rate: float = 60.0,
                cuts: int = 3, cut_s: float = 10.0, stall_s: float = 20.0, drain_timeout_s: float = 240.0) -> BounceReport:
    started = time.monotonic()
    report = BounceReport(projects=projects, malformed=malformed)
    proxy = FaultProxy()
    own = Settings(data_dir=root / "broker")
    state = broker.start(own, advertised=proxy.address)
    supervisor = None
    try:  # from here on the broker and the proxy are stopped whatever fails
        proxy.forward_to(state.bootstrap)  # before any client: the metadata sends them all to the proxy
        broker.start(own, worker_topics())  # the running broker: creates the topics, as `broker start` does
        settings = Settings(data_dir=root / "data", kafka_bootstrap=proxy.address)
        os.environ["TONEFLOW_WORKER_STALL_S"] = str(stall_s)  # read by start_worker's subprocess
        plan = plan_traffic(settings, projects, seed, malformed=malformed)
        write_manifest(settings, plan, seed)
        expected = set(plan.expected_accepted)
        report.expected = len(expected)

        def counts() -> tuple[int, int, int]:
            return (count(settings, "SELECT count(*) FROM accepted_examples"),
                    count(settings, "SELECT count(*) FROM dlq WHERE stage LIKE '%.decode'"),
                    count(settings, "SELECT count(*) FROM labels"))

        def drained() -> bool:
            accepted, dlq, labels = counts()
            return accepted >= len(expected) and dlq >= malformed and labels >= projects

        supervisor = Supervisor(settings, root / "worker.log", proxy, lambda: not drained())

        def sender() -> None:
            try:
                send(settings, plan, rate=rate, progress=False)
            except Exception as err:  # noqa: BLE001 - reported, and the test fails on it
                report.send_error = f"{type(err).__name__}: {err}"

        sending = threading.Thread(target=sender, name="sender")
        sending.start()
        for k in range(1, cuts + 1):
            threshold = projects * k // (cuts + 1)
            wait_for(lambda n=threshold: count(settings, "SELECT count(*) FROM prompts") >= n, drain_timeout_s,
                     f"{threshold} prompts before cut {k}")
            report.cuts.append(proxy.cut(cut_s))
            print(f"cut #{k} ({cut_s:.0f} s) at {count(settings, 'SELECT count(*) FROM prompts')} prompts", flush=True)
        sending.join()
        try:
            wait_for(drained, drain_timeout_s, "the pipeline to drain")
        except AssertionError as err:
            status = status_path(settings).read_text() if status_path(settings).exists() else "no status"
            msg = f"{err}; counts (accepted, dlq, labels) = {counts()}; worker status: {status[:3000]}"
            raise AssertionError(msg) from None
        time.sleep(3)  # late duplicates (if any) land before counting
        con = connect(settings)
        accepted = {r[0] for r in con.execute("SELECT event_id FROM accepted_examples").fetchall()}
        report.accepted_rows = con.execute("SELECT count(*) FROM accepted_examples").fetchone()[0]
        report.missing = len(expected - accepted)
        report.unexpected = len(accepted - expected)
        report.duplicates = report.accepted_rows - len(accepted)
        report.labels = con.execute("SELECT count(*) FROM labels").fetchone()[0]
        report.dlq_malformed = con.execute("SELECT count(*) FROM dlq WHERE stage LIKE '%.decode'").fetchone()[0]
        con.close()
        results = audit(settings)
        report.audit_missing = sum(r.missing for r in results)
        report.audit_ahead = sum(r.ahead for r in results)
    finally:
        if supervisor is not None:
            supervisor.stop()
            report.exits = supervisor.exits
            report.longest_unnoticed_s = supervisor.longest_unnoticed_s
        report.cuts = list(proxy.cuts)
        report.refused = proxy.refused
        proxy.close()
        broker.stop(own)
        os.environ.pop("TONEFLOW_WORKER_STALL_S", None)
        report.wall_s = time.monotonic() - started
        report.load = os.getloadavg()
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--malformed", type=int, default=500)
    ap.add_argument("--rate", type=float, default=60.0, help="events/s sent by the simulator")
    ap.add_argument("--cuts", type=int, default=3)
    ap.add_argument("--cut-s", type=float, default=10.0)
    ap.add_argument("--stall-s", type=float, default=20.0, help="TONEFLOW_WORKER_STALL_S of the worker")
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the data here (default: a temp dir)")
    args = ap.parse_args()
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="toneflow-bounces-"))
    report = run_bounces(root, projects=args.projects, seed=args.seed, malformed=args.malformed, rate=args.rate,
                         cuts=args.cuts, cut_s=args.cut_s, stall_s=args.stall_s)
    for line in report.lines():
        print(line)
    for e in report.exits:
        print(f"exit {e.code}: {e.status}")
    ok = (report.missing == report.unexpected == report.duplicates == 0 and report.labels == args.projects
          and report.dlq_malformed == args.malformed and report.audit_missing == report.audit_ahead == 0
          and not report.send_error and all(e.detection_s <= 30 for e in report.stall_exits)
          and report.longest_unnoticed_s <= 30)
    print("PASS" if ok else "FAIL", f"(data in {root})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

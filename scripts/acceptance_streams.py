"""Issue-4 acceptance run, as a new user would do it, on the embedded broker.

    .venv/bin/python scripts/acceptance_streams.py --projects 2000 --seed 1 --malformed 500 --kills 2

Starts its own broker and data dir, runs `toneflow worker` as a subprocess, sends the simulated
traffic (with malformed records mixed in) through the SDK, SIGKILLs the worker `--kills` times in
the middle of the stream and restarts it, then compares the warehouse with the simulator's
ground-truth manifest. Exit code 0 only if nothing was lost or duplicated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foundation import broker  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from schemas.events import TOPICS  # noqa: E402
from streams.simulator import plan_traffic, send, write_manifest  # noqa: E402
from tests.streams_harness import count, start_worker, stop, wait_for  # noqa: E402
from warehouse.catalog import connect  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--malformed", type=int, default=500)
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--rate", type=float, default=120.0, help="events/s sent by the simulator")
    ap.add_argument("--data-dir", type=Path, default=None, help="keep the data here (default: a temp dir)")
    args = ap.parse_args()

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="toneflow-acceptance-"))
    own = Settings(data_dir=root / "broker")
    state = broker.start(own, TOPICS)
    settings = Settings(data_dir=root / "data", kafka_bootstrap=state.bootstrap)
    log = root / "worker.log"
    started = time.monotonic()
    worker = None
    try:
        plan = plan_traffic(settings, args.projects, args.seed, malformed=args.malformed)
        manifest = write_manifest(settings, plan, args.seed)
        print(f"plan: {len(plan.wire)} events, {plan.exports} exported projects, {plan.malformed} malformed, "
              f"{plan.duplicates} duplicate sends, {plan.export_first} exports before their prompt ({manifest})")
        worker = start_worker(settings, log)
        sender = threading.Thread(target=send, args=(settings, plan), kwargs={"rate": args.rate, "progress": False})
        sender.start()
        valid = args.projects
        for k in range(1, args.kills + 1):
            threshold = valid * k // (args.kills + 1)
            wait_for(lambda n=threshold: count(settings, "SELECT count(*) FROM prompts") >= n, 300, f"{threshold} prompts")
            worker.kill()
            worker.wait(10)
            print(f"SIGKILL #{k} at {count(settings, 'SELECT count(*) FROM prompts')} prompts in the warehouse; restarting")
            worker = start_worker(settings, log)
        sender.join()
        wait_for(lambda: count(settings, "SELECT count(*) FROM accepted_examples") >= len(plan.expected_accepted)
                 and count(settings, "SELECT count(*) FROM dlq") >= args.malformed, 300, "the pipeline to drain")
        time.sleep(3)  # let late duplicates (if any) land before counting
        con = connect(settings)
        accepted = {r[0] for r in con.execute("SELECT event_id FROM accepted_examples").fetchall()}
        view_rows = con.execute("SELECT count(*) FROM accepted_examples").fetchone()[0]
        physical = con.execute("SELECT count(*) FROM read_parquet(?)",
                               [str(settings.data_path / "warehouse/accepted_examples/*/[!.]*.parquet")]).fetchone()[0]
        dlq = con.execute("SELECT count(*) FROM dlq WHERE stage LIKE '%.decode'").fetchone()[0]
        with_reason = con.execute("SELECT count(*) FROM dlq WHERE error <> '' AND bad_offset IS NOT NULL").fetchone()[0]
        labels = con.execute("SELECT count(*) FROM labels").fetchone()[0]
        expected = set(plan.expected_accepted)
        rows = [
            ("expected accepted (manifest)", len(expected)),
            ("accepted_examples rows", view_rows),
            ("missing", len(expected - accepted)),
            ("unexpected", len(accepted - expected)),
            ("duplicate event_ids in view", view_rows - len(accepted)),
            ("physical rows in Parquet (replays)", physical),
            ("labels (valid prompts)", f"{labels} / {args.projects}"),
            ("DLQ malformed with offset+reason", f"{dlq} / {args.malformed} ({with_reason} with reason)"),
            ("worker SIGKILLs", args.kills),
            ("wall time", f"{time.monotonic() - started:.0f} s"),
        ]
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        ok = (accepted == expected and view_rows == len(expected) and dlq == args.malformed
              and labels == args.projects)
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if worker is not None:
            stop(worker)
        broker.stop(own)


if __name__ == "__main__":
    sys.exit(main())

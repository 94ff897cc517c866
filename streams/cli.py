"""``toneflow worker`` and ``toneflow simulate``."""

from __future__ import annotations

import argparse
import json
import sys

from foundation.cli import add_command
from foundation.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    worker = add_command(sub, "worker", "run the stream stages (labeler, join, sink, retrain trigger)",
                         "Run the stream worker: prompts are labelled by the teacher (TONEFLOW_TEACHER), joined\n"
                         "with exports into accepted examples, and every topic lands in Parquet under\n"
                         "<data_dir>/warehouse. Stops on Ctrl-C/SIGTERM; resumes from committed offsets\n"
                         "(consumer groups toneflow-labeler, toneflow-join, toneflow-sink). Start more\n"
                         "workers with the same settings to split the partitions among them.\n"
                         "Needs a broker: `toneflow broker start` or TONEFLOW_KAFKA_BOOTSTRAP.\n\n"
                         "Liveness: a watchdog compares the worker's committed offsets with each partition's end\n"
                         "every few seconds and writes <data_dir>/worker/status.json. A partition with records\n"
                         "and no committed progress for TONEFLOW_WORKER_STALL_S seconds (while the broker answers)\n"
                         "is a stall: the worker logs it and exits with code 75, for its supervisor to restart it.\n"
                         "`toneflow worker --check` reads the status (for health checks): exit 0 when it is fresh\n"
                         "and not stalled, 1 otherwise, with the reason.")
    worker.add_argument("--loglevel", default="warning", choices=("debug", "info", "warning", "error"))
    worker.add_argument("--check", action="store_true",
                        help="do not run: check the running worker's liveness status and exit 0 (healthy) or 1")
    worker.set_defaults(func=_worker)

    sim = add_command(sub, "simulate", "send realistic, seeded app traffic through the producer SDK",
                      "Simulate N projects: look requests (Zipf-popular, paraphrased), explicit adjustment\n"
                      "requests and real requests (--mix), with typos and case noise,\n"
                      "teacher-served edits, exports that depend on how good the served edit was (some\n"
                      "tweaked, some late, some before their prompt, some never), a few duplicates.\n"
                      "Writes a ground-truth manifest to <data_dir>/sim/ for checking the warehouse.")
    sim.add_argument("--projects", type=int, default=1000, help="number of simulated projects")
    sim.add_argument("--seed", type=int, default=0, help="random seed (same seed, same traffic)")
    sim.add_argument("--malformed", type=int, default=0, help="also send this many malformed records")
    sim.add_argument("--rate", type=float, default=0.0, help="events per second (0 = as fast as possible)")
    sim.add_argument("--mix", default=None, help="shares of request kinds, e.g. looks=0.4,explicit=0.35,real=0.25 "
                                                 "[env: TONEFLOW_SIM_MIX]")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    sim.set_defaults(func=_simulate)


def _worker(args: argparse.Namespace) -> int:
    if args.check:
        from streams.liveness import check_health

        report = check_health(get_settings())
        print(report.message, file=sys.stdout if report.ok else sys.stderr)
        return 0 if report.ok else 1
    from streams.worker import run

    run(get_settings(), loglevel=args.loglevel)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from streams.simulator import Mix, plan_traffic, send, write_manifest

    if args.projects < 1:
        from foundation.errors import ToneflowError

        msg = "--projects must be at least 1"
        raise ToneflowError(msg)
    settings = get_settings()
    mix = Mix.parse(args.mix) if args.mix is not None else None
    plan = plan_traffic(settings, args.projects, args.seed, malformed=args.malformed, mix=mix)
    manifest = write_manifest(settings, plan, args.seed)
    sent = send(settings, plan, rate=args.rate, progress=not args.no_progress)
    print(json.dumps({"events_sent": sent, "projects": plan.projects, "exports": plan.exports,
                      "expected_accepted": len(plan.expected_accepted), "malformed": plan.malformed,
                      "duplicates": plan.duplicates, "manifest": str(manifest)}))
    return 0

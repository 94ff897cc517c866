"""``toneflow bench requests [FILE]``: real-request direction accuracy of students and the teacher."""

from __future__ import annotations

import argparse
import json

from foundation.cli import add_command
from foundation.settings import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    bench = add_command(sub, "bench", "measure models on fixed benchmarks")
    bsub = bench.add_subparsers(dest="action", metavar="ACTION", required=True)
    req = add_command(bsub, "requests", "does each edit move the photo the way a human request asks?",
                      "FILE: a TSV of prompt, statistic (luma|chroma|warmth|contrast|green), up|down, threshold\n"
                      "(the format of the shared real-request dev.tsv), or `builtin` for the small built-in set.\n"
                      "Default: the shared dev.tsv under TONEFLOW_REAL_REQUESTS_DIR when present, else builtin.\n"
                      "Each edit is rendered on 8 photographs; a request is met when the statistic's mean change\n"
                      "goes the asked way by at least the threshold (trainer/requests.py).")
    req.add_argument("file", nargs="?", default=None, help="request TSV, or `builtin`")
    req.add_argument("--model", action="append", default=None,
                     help="teacher, current, previous or a version; repeatable (default: current if any, and teacher)")
    req.add_argument("--failures", type=int, default=10, help="failures to list per model (0 = none)")
    req.add_argument("--json", action="store_true")
    req.set_defaults(func=_requests)


def _predictor(settings: object, name: str) -> tuple[str, object]:
    from trainer import registry
    from trainer.requests import teacher_predict

    if name == "teacher":
        return "offline teacher", teacher_predict()
    version = registry.resolve(settings, name)  # type: ignore[arg-type]
    return f"student {version}", registry.load_student(settings, version).predict  # type: ignore[arg-type]


def _requests(args: argparse.Namespace) -> int:
    from editor.lookcompare import LookRenders
    from trainer import registry
    from trainer.requests import default_requests, load_named, result_table, run_requests

    settings = get_settings()
    name, requests = (args.file, load_named(args.file)) if args.file else default_requests(settings)
    models = args.model or ([*(["current"] if registry.read_current(settings) else []), "teacher"])
    renders = LookRenders()
    results = []
    for model in models:
        who, predict = _predictor(settings, model)
        results.append((who, run_requests(predict, requests, renders)))  # type: ignore[arg-type]
    if args.json:
        print(json.dumps({"requests": name, "models": {who: r.as_dict(failures=args.failures) for who, r in results}},
                         indent=2, default=str))
        return 0
    print(f"requests: {name} ({len(requests)})\n")
    print(result_table(results))
    for who, r in results:
        if args.failures and r.failures:
            print(f"\n{who}: {len(r.failures)} not met; first {min(args.failures, len(r.failures))}:")
            for f in r.failures[:args.failures]:
                print(f"  [{f['statistic']} {f['asked']}, moved {f['moved']:+.4f}] {f['prompt'][:80]}  ->  "
                      f"{json.dumps(f['edit'])[:100]}")
    return 0

"""``toneflow predict | serve | rollout``. Heavy imports stay inside the handlers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from foundation.cli import add_command
from foundation.settings import Settings, get_settings


def register(sub: argparse._SubParsersAction) -> None:
    s = Settings.model_fields
    pr = add_command(sub, "predict", "the current student's edit for a prompt, or for a JSONL file (batched)",
                     "One prompt: toneflow predict \"golden hour\" [--json]\n"
                     "A file:     toneflow predict --input prompts.jsonl --output preds.jsonl\n"
                     "Input lines {\"id\", \"prompt\"}; output lines {\"id\", \"prompt\", \"edit\", \"model\"}.")
    pr.add_argument("prompt", nargs="?", help="the look request")
    pr.add_argument("--model", default="current", help="registry model: current, previous or a version")
    pr.add_argument("--input", help="JSONL file of {id, prompt}")
    pr.add_argument("--output", help="JSONL file to write (required with --input)")
    pr.add_argument("--json", action="store_true", help="print {prompt, edit, model} as JSON")
    pr.set_defaults(func=_predict)

    sv = add_command(sub, "serve", "HTTP API: POST /v1/edit, GET /healthz, docs at /docs (hot-reloads models)",
                     "Serves the traffic plan (toneflow rollout status) with the registry's students and the\n"
                     "teacher; emits every served prompt to toneflow.prompts. Set TONEFLOW_SERVE_TOKEN to\n"
                     "require 'Authorization: Bearer <token>'.")
    sv.add_argument("--host", default=None, help=f"bind address; unset = TONEFLOW_SERVE_HOST ({s['serve_host'].default})")
    sv.add_argument("--port", type=int, default=None, help=f"port; unset = TONEFLOW_SERVE_PORT ({s['serve_port'].default})")
    sv.add_argument("--reload-interval", type=float, default=None,
                    help="seconds between registry/plan checks; unset = TONEFLOW_SERVE_RELOAD_INTERVAL_S")
    sv.add_argument("--no-events", action="store_true", help="do not send prompt events to Kafka")
    sv.add_argument("--access-log", action="store_true", help="log every request")
    sv.set_defaults(func=_serve)

    ro = add_command(sub, "rollout", "the online gate: A/B traffic plan, candidate start, promote/rollback decisions")
    rsub = ro.add_subparsers(dest="action", metavar="ACTION", required=True)
    st = add_command(rsub, "status", "the traffic plan, the candidate's numbers now, recent decisions")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_rollout_status)
    sp = add_command(rsub, "step", "decide once and act: promote, roll back or keep collecting (logged + warehouse)")
    sp.add_argument("--dry-run", action="store_true", help="decide and print, change nothing, record nothing")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_rollout_step)
    sc = add_command(rsub, "start-candidate", "give a registry model a share of traffic next to the champion")
    sc.add_argument("--model", default="current", help="current, previous or a version")
    sc.add_argument("--share", type=float, default=None, help="traffic share [env: TONEFLOW_ROLLOUT_CANDIDATE_SHARE]")
    sc.add_argument("--variant", default=None, help="arm name (default student-<version>)")
    sc.set_defaults(func=_rollout_start)
    wa = add_command(rsub, "watch", "the automatic loop: start candidates as the trainer registers them, step every N s")
    wa.add_argument("--every", type=float, default=60.0, help="seconds between steps")
    wa.add_argument("--rounds", type=int, default=0, help="stop after N rounds (0 = run until Ctrl-C)")
    wa.set_defaults(func=_rollout_watch)
    rs = add_command(rsub, "reset", "delete the traffic plan (back to the default plan)")
    rs.set_defaults(func=_rollout_reset)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from serving.exceptions import PredictInputError
    from serving.predict import predict_file, read_prompts
    from trainer.students.base import set_threads

    if (args.input is None) == (args.prompt is None):
        msg = "give a prompt, or --input FILE --output FILE (not both)"
        raise PredictInputError(msg)
    if args.input and not args.output:
        msg = "--input needs --output FILE for the predictions"
        raise PredictInputError(msg)
    rows = read_prompts(Path(args.input)) if args.input else []  # a bad file fails before the model loads
    settings = get_settings()
    threads = set_threads(settings.torch_threads)
    student = _predict_student(settings, args.model, threads)
    model = {"kind": "student", "name": student.name, "version": student.version}
    if args.input:
        n = predict_file(student, rows, Path(args.output))
        print(f"{n} predictions by student {model['name']}@{model['version']} -> {args.output}", file=sys.stderr)
        return 0
    [edit] = student.predict([args.prompt])
    if args.json:
        print(json.dumps({"prompt": args.prompt, "edit": edit.canonical_dict(), "model": model}))
    else:
        print(json.dumps(edit.canonical_dict(), indent=2))
        print(f"# student {model['name']}@{model['version']}", file=sys.stderr)
    return 0


def _predict_student(settings: Settings, name: str, threads: int) -> Any:
    """The version's fp32 ONNX export when it has one (the same numbers as the PyTorch model the offline
    gate scored, ~3x faster), else the PyTorch student with ``load_student``'s damaged-model fallback."""
    from serving.ort_student import load_export
    from trainer.exceptions import CorruptModel
    from trainer.registry import load_student, resolve, verify

    version = resolve(settings, name)  # no model / no such version: the CLI says what to do
    try:
        verify(settings, version)
    except CorruptModel:
        return load_student(settings, name)  # falls back to the previous champion, or says what is damaged
    try:
        fast = load_export(settings, version, int8=False, threads=threads)
    except CorruptModel as err:
        print(f"# {err}; using PyTorch", file=sys.stderr)
        fast = None
    except Exception as err:  # noqa: BLE001 - an export this ONNX Runtime cannot run: PyTorch still can
        print(f"# cannot run the ONNX export ({type(err).__name__}: {err}); using PyTorch", file=sys.stderr)
        fast = None
    return fast if fast is not None else load_student(settings, name)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from serving.app import create_app
    from serving.server import uvicorn_config
    from trainer.students.base import set_threads

    settings = get_settings()
    # One thread per forward pass by default: requests are micro-batched, and on a small shared CPU
    # two intra-op threads fighting uvicorn and other processes made p50 ~9x slower (bench_serving).
    set_threads(settings.serve_torch_threads)
    host, port = args.host or settings.serve_host, args.port or settings.serve_port
    app = create_app(settings, emit_events=False if args.no_events else None, reload_interval_s=args.reload_interval)
    print(f"toneflow serving on http://{host}:{port} (docs: /docs, health: /healthz)", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn_config(app, host, port, access_log=args.access_log)).run()
    return 0


def _rollout_status(args: argparse.Namespace) -> int:
    from serving.ab import load_plan, plan_path
    from serving.rollout import decide, recent_decisions

    settings = get_settings()
    plan = load_plan(settings)
    decision = decide(settings, plan)
    recent = recent_decisions(settings)
    if args.json:
        _print_json({"plan": {**plan.to_dict(), "source": plan.source, "shares": plan.shares()},
                     "decision_now": decision.row(), "recent": recent})
        return 0
    where = plan_path(settings) if plan.source == "file" else "default (no plan file)"
    print(f"plan: {where}; experiment {plan.experiment}; champion {plan.champion}")
    for arm, share in zip(plan.arms, plan.shares().values()):
        print(f"  {arm.variant:<24} {arm.kind:<8} {arm.model or '':<10} {share:6.1%}")
    print(f"now: {decision.summary()}")
    for row in recent:
        print(f"  {row['ts']}  {row['verdict']:<15} {row.get('candidate_variant') or ''}  {row.get('action') or ''}")
    return 0


def _rollout_step(args: argparse.Namespace) -> int:
    from serving.rollout import decide, step

    settings = get_settings()
    decision = decide(settings) if args.dry_run else step(settings)
    if args.json:
        _print_json(decision.row())
    else:
        print(decision.summary())
    return 0


def _rollout_start(args: argparse.Namespace) -> int:
    from serving.rollout import start_candidate

    plan = start_candidate(get_settings(), args.model, args.share, args.variant)
    print(json.dumps(plan.to_dict(), indent=2))
    return 0


def _rollout_watch(args: argparse.Namespace) -> int:
    import time

    from serving.rollout import watch_once

    settings = get_settings()
    done = 0
    while True:
        print(watch_once(settings).summary(), flush=True)
        done += 1
        if args.rounds and done >= args.rounds:
            return 0
        time.sleep(args.every)


def _rollout_reset(_args: argparse.Namespace) -> int:
    from serving.ab import reset_plan

    print("traffic plan deleted; serving the default plan" if reset_plan(get_settings()) else "no traffic plan to delete")
    return 0

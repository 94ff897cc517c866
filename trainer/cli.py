"""``toneflow train | trainer | eval | dataset | models``. Heavy imports stay inside the handlers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from foundation.cli import add_command
from foundation.settings import Settings, get_settings
from trainer import service_cli

# (settings, promoted version) -> None when serving will follow the promote, else why not. Given by
# the CLI root (toneflow/cli.py): the traffic plan belongs to the serving layer, above this one.
PromotionEffect = Callable[[Settings, str], str | None]


def register(sub: argparse._SubParsersAction, promotion_effect: PromotionEffect | None = None) -> None:
    from trainer.config import add_arguments

    train = add_command(sub, "train", "train a student, evaluate it, register it, promote it if it passes the gate",
                        "Train on --input FILE (snapshotted first), --snapshot ID, or the warehouse (default).\n"
                        "The candidate is evaluated on the pinned test set (else the snapshot's test split) and\n"
                        "becomes `current` only if its overall is not worse than the current model's - margin.\n"
                        "Exit code 0 also when the gate keeps the current model (see \"promoted\" in --json).")
    add_arguments(train)
    train.add_argument("--json", action="store_true", help="print the outcome as JSON")
    train.set_defaults(func=_train, promotion_effect=promotion_effect)
    service_cli.register(sub)

    ev = add_command(sub, "eval", "score predictions (files) or a model (on a snapshot) with the paper's metrics",
                     "Files: --predictions P.jsonl --references R.jsonl, one {\"id\", \"edit\"} per line, matched\n"
                     "by id (a reference without a prediction scores as {}). Model: --model NAME|current and\n"
                     "--snapshot ID (default: the pinned benchmark, else the model's own snapshot); writes a\n"
                     "report (Markdown + PNG) next to the model. Optional reference key `exporters` gives r_3/r_5.")
    ev.add_argument("--predictions", help="JSONL of {id, edit} predictions")
    ev.add_argument("--references", help="JSONL of {id, edit} references")
    ev.add_argument("--model", help="registry model: current, previous or a version (v000003)")
    ev.add_argument("--snapshot", help="snapshot id whose split to evaluate on ('latest' = newest)")
    ev.add_argument("--split", default="test", choices=("test", "validation", "train"))
    ev.add_argument("--json", action="store_true",
                    help="print {adjust, selective_adjust, filter, overall, n, seen_looks, unseen_looks, rendered, requests}")
    ev.add_argument("--detailed", action="store_true",
                    help="with --json: add MAE, r_3/r_5, support counts, per-example ΔE and request failures")
    ev.add_argument("--no-render", dest="render", action="store_false",
                    help="skip the rendered-look agreement and the real requests (parameter metrics only)")
    ev.set_defaults(func=_eval)

    ds = add_command(sub, "dataset", "freeze, list, inspect and pin training data snapshots")
    dsub = ds.add_subparsers(dest="action", metavar="ACTION", required=True)
    snap = add_command(dsub, "snapshot", "freeze the warehouse (or --input FILE) into an immutable snapshot")
    snap.add_argument("--input", help="JSONL/Parquet of (prompt, edit) pairs instead of the warehouse")
    snap.add_argument("--policy", default="export_rate", choices=("export_rate", "all_accepted", "user_corrected_first"))
    snap.add_argument("--no-auto-augment", dest="auto_augment", action="store_false",
                      help="do not paraphrase small look slices (TONEFLOW_AUGMENT_MIN_SLICE)")
    snap.add_argument("--json", action="store_true")
    snap.set_defaults(func=_snapshot)
    dlist = add_command(dsub, "list", "list snapshots, oldest first")
    dlist.set_defaults(func=_snapshot_list)
    show = add_command(dsub, "show", "print a snapshot's manifest")
    show.add_argument("id", nargs="?", default="latest")
    show.set_defaults(func=_snapshot_show)
    pin = add_command(dsub, "pin", "freeze a snapshot's test split as the benchmark every promotion is judged on")
    pin.add_argument("id")
    pin.set_defaults(func=_snapshot_pin)

    models = add_command(sub, "models", "list, promote and roll back registered models")
    msub = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    mlist = add_command(msub, "list", "list registered models (* = current)")
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(func=_models_list)
    mdec = add_command(msub, "decisions", "the offline gate's decision log: each criterion, and which one decided")
    mdec.add_argument("name", nargs="?", default=None, help="only decisions about this version")
    mdec.add_argument("--json", action="store_true")
    mdec.set_defaults(func=_models_decisions)
    prom = add_command(msub, "promote", "make a model current if it passes the gate (atomic)")
    prom.add_argument("name", help="version (v000003 or 3)")
    prom.add_argument("--force", action="store_true", help="skip the gate")
    prom.add_argument("--margin", type=float, default=None, help="gate margin (default: TONEFLOW_PROMOTE_MARGIN)")
    prom.set_defaults(func=_models_promote, promotion_effect=promotion_effect)
    roll = add_command(msub, "rollback", "point current back at the previous champion (atomic, never gated)")
    roll.add_argument("--to", default=None, help="a specific version instead of the previous champion")
    roll.set_defaults(func=_models_rollback)
    exp = add_command(msub, "export", "store a model's ONNX export (fp32 + int8) for serving; promote does this itself")
    exp.add_argument("name", nargs="?", default="current", help="current (default), previous or a version")
    exp.set_defaults(func=_models_export)

    from trainer.bench_cli import register as register_bench

    register_bench(sub)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False, default=str))


def _train(args: argparse.Namespace) -> int:
    from trainer.config import from_args
    from trainer.train import main, timing_line

    outcome = main(from_args(args))
    if outcome.get("promoted") and args.promotion_effect:
        outcome["serving_note"] = args.promotion_effect(get_settings(), outcome["version"])
    if args.json:
        _print_json(outcome)
        return 0
    if outcome.get("skipped"):
        print(outcome["reason"])
        return 0
    print(outcome.pop("table"))
    verdict = "promoted to current" if outcome["promoted"] else f"kept current ({outcome.get('reason', 'not promoted')})"
    print(f"\n{outcome['version']}: overall {outcome['overall']:.4f} on {outcome['n_test']} test rows "
          f"({outcome['train_rows']} train rows, fit {outcome['fit_seconds']:.0f}s) — {verdict}")
    print(timing_line(outcome))
    if outcome.get("serving_note"):
        print(outcome["serving_note"])
    return 0


def _eval(args: argparse.Namespace) -> int:
    from trainer.evaluate import detail_table, evaluate_files, honest_table, paper_table

    if args.predictions or args.references:
        if not (args.predictions and args.references):
            print("error: --predictions and --references go together", file=sys.stderr)
            return 2
        result, title = evaluate_files(args.predictions, args.references, render=args.render), "predictions"
    elif args.model:
        result, title = _eval_model(args)
    else:
        print("error: give --predictions/--references or --model", file=sys.stderr)
        return 2
    if args.json:
        out = result.public()
        if args.detailed:
            out["subsets"] = {k: v.as_dict() for k, v in result.subsets.items()}
            if result.rendered is not None:
                out["rendered"]["examples"] = result.rendered.per_example(result.ids)
            if result.requests is not None:
                out["requests"]["failures"] = result.requests.failures
        _print_json(out)
        return 0
    print(paper_table([(title, result.subsets)], with_paper=True))
    print()
    print(honest_table(result, title))
    print()
    print(detail_table(result.subsets["All"]))
    return 0


def _eval_model(args: argparse.Namespace) -> tuple[Any, str]:
    from trainer import registry, snapshot
    from trainer.evaluate import evaluate_student
    from trainer.report import write_report
    from trainer.requests import default_requests
    from trainer.train import trained_rows

    settings = get_settings()
    version = registry.resolve(settings, args.model)
    if args.snapshot:
        snap = snapshot.load(settings, args.snapshot)
        test_id, rows = (snap.test_set_id, snap.rows("test")) if args.split == "test" else \
            (f"{snap.id}-{args.split}", snap.rows(args.split))
    else:
        own = registry.manifest(settings, version).get("snapshot") or "latest"
        test_id, rows = snapshot.benchmark_set(settings, snapshot.load(settings, own))
    result = evaluate_student(registry.load_student(settings, version), rows, train_rows=trained_rows(settings, version),
                              render=args.render, requests=default_requests(settings)[1] if args.render else None)
    if args.split == "test" and args.render:  # the gate needs every criterion in the record
        registry.record_eval(settings, version, test_id, result.record())
    out = registry.models_dir(settings) / "evals" / version / f"report-{test_id}"
    path = write_report(out, result, title=f"{version} on {test_id}", context={"model": version, "rows": len(rows)})
    print(f"report: {path}", file=sys.stderr)
    return result, version


def _snapshot(args: argparse.Namespace) -> int:
    from trainer.config import TrainConfig
    from trainer.train import resolve_snapshot

    snap = resolve_snapshot(get_settings(), TrainConfig(input=args.input, policy=args.policy,
                                                        auto_augment=args.auto_augment))
    if args.json:
        _print_json(snap.manifest)
    else:
        files = snap.manifest["files"]
        print(f"{snap.id}: " + ", ".join(f"{k.split('.')[0]} {v['rows']} ({v['augmented']} augmented)"
                                         for k, v in files.items()) + f" — policy {snap.manifest['policy']}")
    return 0


def _snapshot_list(args: argparse.Namespace) -> int:
    from trainer import snapshot

    settings = get_settings()
    pinned = (snapshot.read_pin(settings) or {}).get("snapshot")
    for sid in snapshot.list_ids(settings):
        m = snapshot.load(settings, sid).manifest
        rows = " ".join(f"{k.split('.')[0]}={v['rows']}" for k, v in m["files"].items())
        print(f"{'P' if sid == pinned else ' '} {sid}  {m['policy']:<20} {rows}  source={m['source'].get('kind')}")
    return 0


def _snapshot_show(args: argparse.Namespace) -> int:
    from trainer import snapshot

    _print_json(snapshot.load(get_settings(), args.id).manifest)
    return 0


def _snapshot_pin(args: argparse.Namespace) -> int:
    from trainer import snapshot

    record = snapshot.pin(get_settings(), args.id)
    print(f"pinned {record['snapshot']}'s test split ({record['rows']} rows, test set {record['test_set']})")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from trainer import registry

    models = registry.list_models(get_settings())
    if args.json:
        _print_json([asdict(m) for m in models])
        return 0
    if not models:
        print("no models yet: run `toneflow train`")
    for m in models:
        overall = f"{m.overall:.4f}" if m.overall is not None else "-"
        delta_e = f"{m.delta_e:.2f}" if m.delta_e is not None else "-"
        requests = f"{m.request_accuracy:.3f}" if m.request_accuracy is not None else "-"
        print(f"{'*' if m.current else ' '} {m.version}  {m.student:<8} overall={overall}  ΔE={delta_e}  "
              f"requests={requests}  snapshot={m.snapshot}  parent={m.parent or '-'}  gate={m.gate or '-'}")
    return 0


def _models_decisions(args: argparse.Namespace) -> int:
    from trainer import registry

    settings = get_settings()
    rows = registry.decisions(settings, registry.resolve(settings, args.name) if args.name else None)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no gate decisions yet")
    for d in rows:
        verdict = "promoted" if d["promoted"] else "rejected"
        print(f"{d['candidate']} vs {d.get('champion') or '-'}: {verdict}, decided by {d['decided_by']}")
        for c in d.get("criteria", []):
            mark = {True: "pass", False: "FAIL", None: "n/a"}[c["passed"]]
            cand = "-" if c["candidate"] is None else f"{c['candidate']:.4f}"
            champ = "-" if c["champion"] is None else f"{c['champion']:.4f}"
            print(f"    {c['criterion']:<18} {mark:<4} candidate {cand}  champion {champ}  margin {c['margin']:g}")
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    from trainer.actions import promote_model

    settings = get_settings()
    outcome = promote_model(settings, args.name, force=args.force, margin=args.margin)
    version = outcome["version"]
    print(f"{version}: {'now current' if outcome['promoted'] else outcome.get('reason')}")
    note = args.promotion_effect(settings, version) if args.promotion_effect and outcome["promoted"] else None
    if note:
        print(note)
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    from trainer.actions import rollback_model

    outcome = rollback_model(get_settings(), args.to)
    print(f"current is now {outcome['version']} (was {outcome['previous']})")
    return 0


def _models_export(args: argparse.Namespace) -> int:
    """For versions promoted before exports existed: servers load the export on their next reload
    of that version (a restart, or its next promote)."""
    from trainer import registry

    settings = get_settings()
    version = registry.resolve(settings, args.name)
    done = registry.store_export(settings, version)
    if done is None:
        print(f"{version}: students of kind {registry.manifest(settings, version)['student']} have no ONNX export")
        return 1
    print(f"{version}: ONNX export stored in {registry.export_dir(settings, version)} "
          f"(fp32 vs PyTorch max diff {done['export']['parity']['fp32_max_abs_diff']:.1e})")
    return 0

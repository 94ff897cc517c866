"""Student variants side by side: the same snapshot, the same seed, an epoch budget, one table.

    nice -n 15 .venv/bin/python benchmarks/bench_student_variants.py --variants mean,attention,cls_mean
    nice -n 15 .venv/bin/python benchmarks/bench_student_variants.py --n 2000 --epochs 3 --variants all

Data: ``--n`` requests of the simulator's mixed traffic (``simulate_dataset`` with ``Mix.default()``), labelled
by the offline teacher, snapshotted once without and once with contrastive rows
(``trainer.contrastive``, the kinds each variant names; contrastive rows are train-only, so every
snapshot shares validation and test). Each variant is a named ``MiniLMConfig`` (``VARIANTS``) trained from scratch with a fixed
number of epochs (``--epochs`` for the end-to-end phase) instead of a wall-clock budget, so the
comparison is fair on a shared, loaded machine; the seconds column still says what each costs here.

Columns: seen wording / unseen intents overall on the intent-disjoint test rows whose group no
variant trained on (``trainer.grouping.look_subsets``), and direction accuracy on the real requests
(``settings.real_requests_dir``'s dev set, read at run time; the built-in set without it).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ALL, FLIP, FLIPS = ("flip", "scale", "recombine"), ("flip",), ("flip", "flip_one")
# name → (contrastive kinds added to train (trainer.contrastive.KINDS; () = none), MiniLMConfig overrides;
# "lr" sets the end-to-end learning rate, "epochs_x" multiplies --epochs)
VARIANTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "mean": ((), {}),
    "mean+contrastive": (ALL, {}),
    "mean+flip": (FLIP, {}),
    "cls_mean+contrastive": (ALL, {"pooling": "cls_mean"}),
    "attention+contrastive": (ALL, {"pooling": "attention"}),
    "attention+flip": (FLIP, {"pooling": "attention"}),
    "attention+flip+scale": (("flip", "scale"), {"pooling": "attention"}),
    "attention": ((), {"pooling": "attention"}),
    "qkvd+contrastive": (ALL, {"lora_targets": ("query", "key", "value", "dense")}),
    "attention+qkvd+contrastive": (ALL, {"pooling": "attention", "lora_targets": ("query", "key", "value", "dense")}),
    "attention+qkvd+flip": (FLIP, {"pooling": "attention", "lora_targets": ("query", "key", "value", "dense")}),
    "attention+full+flip": (FLIP, {"pooling": "attention", "finetune": "full"}),
    "attention+r32+contrastive": (ALL, {"pooling": "attention", "lora_r": 32, "lora_alpha": 64}),
    "full+contrastive": (ALL, {"finetune": "full"}),
    "attention+full+contrastive": (ALL, {"pooling": "attention", "finetune": "full"}),
    "attention+flip+signval": (FLIP, {"pooling": "attention", "val_metric": "overall+sign"}),
    "attention+flip+signloss": (FLIP, {"pooling": "attention", "sign_weight": 4.0}),
    "attention+flip+signloss+signval": (FLIP, {"pooling": "attention", "sign_weight": 4.0,
                                               "val_metric": "overall+sign"}),
    "attention+flips": (FLIPS, {"pooling": "attention"}),
    "multi+flips": (FLIPS, {"pooling": "multi"}),
    "multi+flip": (FLIP, {"pooling": "multi"}),
    "attention+flips+signloss": (FLIPS, {"pooling": "attention", "sign_weight": 4.0}),
    "attention+full+flip+lr1e-4": (FLIP, {"pooling": "attention", "finetune": "full", "lr": 1e-4}),
    "attention+flip+lr1e-3": (FLIP, {"pooling": "attention", "lr": 1e-3}),
    "attention+flip+lr2e-3": (FLIP, {"pooling": "attention", "lr": 2e-3}),
    "attention+flips+lr1e-3": (FLIPS, {"pooling": "attention", "lr": 1e-3}),
    # issue 12 round 5: per-parameter direction classes (down / none / up) + magnitude in the heads;
    # they are the default since, so the names without "+dir" use them too unless they say "+regress"
    "attention+flip+regress": (FLIP, {"pooling": "attention", "heads": "regress"}),
    "attention+flip+dir": (FLIP, {"pooling": "attention", "heads": "direction"}),
    "attention+flips+dir": (FLIPS, {"pooling": "attention", "heads": "direction"}),
    "attention+flip+dir+lr1e-3": (FLIP, {"pooling": "attention", "heads": "direction", "lr": 1e-3}),
    "attention+flip+dir+qkvd": (FLIP, {"pooling": "attention", "heads": "direction",
                                       "lora_targets": ("query", "key", "value", "dense")}),
    # issue 12 round 6: one learned token weighting per predicted value (binding a direction word to
    # its attribute: "lessen the brightness and increase the saturation")
    "labelwise+flip": (FLIP, {"pooling": "labelwise"}),
    "labelwise+flips": (FLIPS, {"pooling": "labelwise"}),
    "frozen+contrastive": (ALL, {"finetune": "frozen"}),
    "attention+frozen+contrastive": (ALL, {"pooling": "attention", "finetune": "frozen"}),
    # the default recipe (attention + flip, LoRA) on a shallower encoder: serving cost is ~linear in depth
    "attention+flip+layers5": (FLIP, {"pooling": "attention", "layers": 5}),
    "attention+flip+layers4": (FLIP, {"pooling": "attention", "layers": 4}),
    "attention+flip+layers3": (FLIP, {"pooling": "attention", "layers": 3}),
    # issue 14 round 6: a 3-layer epoch costs ~half a 6-layer one, so a time-bounded training run
    # gives it ~2x the epochs ("2x"); "spread" keeps layers 0, 2, 5 instead of 0, 1, 2 (keep_layers)
    "attention+flip+layers3+2x": (FLIP, {"pooling": "attention", "layers": 3, "epochs_x": 2}),
    "attention+flip+layers3+spread": (FLIP, {"pooling": "attention", "layers": 3, "layer_pick": "spread"}),
    "attention+flip+layers3+spread+2x": (FLIP, {"pooling": "attention", "layers": 3, "layer_pick": "spread",
                                                "epochs_x": 2}),
    # issue 12 / 14 round 7: the same 3-layer recipe with the default (label-wise) pooling
    "labelwise+flip+layers3+spread+2x": (FLIP, {"pooling": "labelwise", "layers": 3, "layer_pick": "spread",
                                                "epochs_x": 2}),
    "labelwise+flip+layers3+spread+2x+lr1e-3": (FLIP, {"pooling": "labelwise", "layers": 3, "layer_pick": "spread",
                                                       "epochs_x": 2, "lr": 1e-3}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="simulated mixed requests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", default=None,
                        help="simulator mix, e.g. looks=0.4,explicit=0.2,real=0.4 (default: Mix.default())")
    parser.add_argument("--epochs", type=int, default=3, help="end-to-end epochs per variant (no time budget)")
    parser.add_argument("--lr", type=float, default=None, help="override the end-to-end learning rate")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = auto)")
    parser.add_argument("--variants", default="mean,mean+contrastive,attention+contrastive",
                        help=f"comma-separated names, or 'all': {', '.join(VARIANTS)}")
    parser.add_argument("--workdir", help="keep the data here and reuse it (default: a temp dir)")
    parser.add_argument("--failures", help="write each variant's unmet real requests (JSON) into this folder")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        msg = f"unknown variant(s) {', '.join(unknown)}; pick from {', '.join(VARIANTS)}"
        raise SystemExit(msg)

    from foundation.settings import Settings
    from streams.simulator import Mix, simulate_dataset
    from trainer import snapshot, sources
    from trainer.contrastive import contrastive_rows
    from trainer.evaluate import evaluate_student
    from trainer.labels import apply_policy
    from trainer.requests import default_requests
    from trainer.students.base import FitConfig, seed_everything, set_threads
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    threads = set_threads(args.threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="toneflow-variants-"))
    work.mkdir(parents=True, exist_ok=True)
    mix = Mix.parse(args.mix) if args.mix else Mix.default()
    data = work / f"mixed-{args.n}-{args.seed}{'-' + args.mix.replace(',', '-') if args.mix else ''}.jsonl"
    if not data.exists():
        t = time.monotonic()
        simulate_dataset(data, args.n, seed=args.seed, mix=mix)
        print(f"simulated + labelled {args.n} mixed requests in {time.monotonic() - t:.0f} s", flush=True)
    settings = Settings(data_dir=work / "data")
    cands, served = sources.from_file(str(data))
    rows = apply_policy(cands, "export_rate", served=served, min_served=settings.label_min_served)
    source = {"kind": "file", "path": str(data)}
    snaps = {kinds: snapshot.create(settings, rows, policy="export_rate", source=source,
                                    augmented=contrastive_rows(rows, settings, seed=args.seed, kinds=kinds)
                                    if kinds else None)
             for kinds in {VARIANTS[name][0] for name in names} | {()}}
    plain = snaps[()]
    val = plain.rows("validation")  # contrastive rows are train-only: every snapshot has these
    _, test_rows = snapshot.benchmark_set(settings, plain)
    union = {r.id: r for snap in snaps.values() for r in snap.rows("train")}
    req_name, requests = default_requests(settings)
    sizes = ", ".join(f"+{len(s.rows('train')) - len(plain.rows('train'))} {'+'.join(k)}" for k, s in snaps.items() if k)
    print(f"train rows {len(plain.rows('train'))} ({sizes or 'no contrastive rows'}), validation {len(val)}, "
          f"test {len(test_rows)}; real requests {req_name}; {threads} torch threads; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)

    lines = ["| variant | seen wording | unseen intents | real-request direction | fit s | epochs (heads + e2e) |",
             "|---|---|---|---|---|---|"]
    for name in names:
        kinds, overrides = VARIANTS[name]
        train = snaps[kinds].rows("train")
        seed_everything(args.seed)
        overrides = dict(overrides)
        epochs = args.epochs * overrides.pop("epochs_x", 1)
        fit = FitConfig(epochs=epochs, patience=epochs, seed=args.seed, progress=False)
        lr = overrides.pop("lr", args.lr)  # a variant's own end-to-end learning rate beats --lr
        if lr is not None:
            fit = replace(fit, lr=lr)
        student = MiniLMStudent(MiniLMConfig(**overrides, fit=fit))
        load, cpu = os.getloadavg()[0], time.process_time()
        report = student.fit(train, val)
        cpu = time.process_time() - cpu  # less load-sensitive than the wall seconds on a shared box
        result = evaluate_student(student, test_rows, train_rows=list(union.values()), render=False,
                                  requests=requests)
        seen, unseen, q = result.subsets.get("seen_looks"), result.subsets.get("unseen_looks"), result.requests
        heads_epochs = len(report.val_scores) - (0 if overrides.get("finetune") == "frozen" else
                                                 min(epochs, len(report.val_scores)))
        line = (f"| {name} | {seen.overall if seen else float('nan'):.3f} | "
                f"{unseen.overall if unseen else float('nan'):.3f} | "
                f"{f'{q.met}/{q.n} = {q.accuracy:.3f}' if q is not None else '-'} | "
                f"{report.seconds:.0f} (CPU {cpu:.0f}; load {load:.1f}→{os.getloadavg()[0]:.1f}) | "
                f"{heads_epochs} + {len(report.val_scores) - heads_epochs} |")
        print(line, flush=True)
        lines.append(line)
        if args.failures and q is not None:
            out = Path(args.failures)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.json").write_text(json.dumps(q.as_dict(failures=None), indent=1), encoding="utf-8")
    print(f"\n# Student variants (n={args.n}, seed {args.seed}, {args.epochs} end-to-end epochs, "
          f"seen n={result.subsets['seen_looks'].n if 'seen_looks' in result.subsets else 0}, "
          f"unseen n={result.subsets['unseen_looks'].n if 'unseen_looks' in result.subsets else 0})\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""The training configuration: one dataclass, per-field help, YAML ``--config`` merge.

Precedence (lowest → highest): field defaults < ``TONEFLOW_*`` settings (student, seed) < YAML
file < command-line flags. ``add_arguments`` builds the ``toneflow train`` flags from the fields,
so the help text lives in exactly one place.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from trainer.exceptions import TrainerError

DEFAULT_BASE_MODELS = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "seq2seq": "google/flan-t5-base",  # the paper's FlanT5-base student
    "causal": "meta-llama/Llama-2-7b-chat-hf",  # the paper's Llama-class student
}


class DepthRecipe(NamedTuple):
    """The student's encoder depth and the epoch cap that goes with it: an epoch of an N-layer encoder
    costs about N/6 of a 6-layer one, so the same time budget (``max_minutes``) holds 6/N times the epochs."""

    layers: int  # MiniLMConfig.layers (0 = all)
    layer_pick: str  # MiniLMConfig.layer_pick: which layers a shallower encoder keeps
    epochs: int


DEPTH_RECIPES = {
    "full": DepthRecipe(0, "first", 6),
    # docs/benchmarks.md "Serving speed, round 6": 0.44x the CPU per prompt of "full"
    # round 7, label-wise pooling, 3 seeds: seen -0.6, unseen -1.0 points, real-request direction +4.3 rows
    "shallow3": DepthRecipe(3, "spread", 12),
    # round 15, 4 paired seeds on the demo's first snapshot: real-request direction -2.5 of 300, group-balanced
    # overall +0.8 points, unseen -0.2; on bench_trainer_acceptance's 12k rows -2.6 overall, -3.8 unseen, -2 real;
    # ONNX int8 0.71-0.78x the CPU per prompt of "shallow3", the issue-14 latency target met (docs/benchmarks.md)
    "shallow2": DepthRecipe(2, "spread", 18),
}
# the training default (docs/benchmarks.md "Student variants", round 7; "Issue 14, round 15")
DEPTH_RECIPE = DEPTH_RECIPES["shallow2"]


def _f(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    input: str | None = _f(None, "train from this JSONL/Parquet file of (prompt, edit) pairs (snapshotted first)")
    snapshot: str | None = _f(None, "train on this snapshot id ('latest' = newest); default: the warehouse")
    policy: str = _f("export_rate", "label policy when snapshotting",
                     choices=("export_rate", "all_accepted", "user_corrected_first"))
    student: str | None = _f(None, "student kind (default: TONEFLOW_STUDENT)", choices=("minilm", "seq2seq", "causal"))
    base_model: str | None = _f(None, "HF id or local path of the base model (default per student kind)")
    finetune: str = _f("lora", "lora adapters, full fine-tune, or frozen encoder (minilm only)",
                       choices=("lora", "full", "frozen"))
    lora_r: int = _f(16, "LoRA rank")
    lora_targets: str = _f("query,value", "minilm, --finetune lora: comma-separated encoder modules that get adapters, "
                           "of query, key, value and dense (dense: the attention output and both FFN projections, so "
                           "all four = every linear layer; measured against the default in docs/benchmarks.md "
                           "'Issue 12, round 16': higher look scores, real-request direction behind in 4 of 5 pairings)")
    pooling: str = _f("labelwise", "minilm: how token states become one vector: mean, cls_mean (first token + mean), "
                      "attention (learned token weights + mean), multi (4 such weightings + mean) or labelwise "
                      "(one weighting per predicted value; trainer/students/minilm.py build_pooler)",
                      choices=("mean", "cls_mean", "attention", "multi", "labelwise"))
    heads: str = _f("direction", "minilm: the heads' adjust / selective values: direction (down / none / up class "
                    "+ magnitude; trainer/students/structured.py) or regress (tanh value + changed gate, the "
                    "pre-round-5 heads)",
                    choices=("regress", "direction"))
    layers: int = _f(DEPTH_RECIPE.layers, "minilm: keep only N of the encoder's 6 layers (0 = all; 2 by default, spread: "
                     "0 and 5). Serving CPU is ~linear in depth; docs/benchmarks.md 'Student variants' round 7 and "
                     "'Issue 14, round 15' measure the quality and speed")
    layer_pick: str = _f(DEPTH_RECIPE.layer_pick, "minilm, with --layers: which layers to keep: the first N, or N "
                         "spread from the first to the last (3 of 6: 0, 2, 5; trainer/students/minilm.py keep_layers)",
                         choices=("first", "spread"))
    sign_weight: float = _f(0.0, "minilm, regress heads: weight of the hinge on each changed value's direction in the loss "
                            "(trainer/students/structured.py head_loss; 0 = off)")
    val_metric: str = _f("overall", "minilm: the validation score that picks the kept epoch: overall, or "
                         "overall+sign (its mean with trainer.metrics.sign_agreement)",
                         choices=("overall", "overall+sign"))
    load_in_4bit: bool = _f(False, "load generative students 4-bit via bitsandbytes (needs CUDA)")
    epochs: int = _f(DEPTH_RECIPE.epochs, "max epochs of the main phase (early stopping or the time budget usually "
                     "ends sooner; 18 by default: a 2-layer epoch costs a third of a 6-layer one)")
    batch_size: int = _f(32, "examples per step")
    lr: float = _f(5e-4, "learning rate of adapters/encoder")
    patience: int = _f(2, "epochs without a better validation overall before stopping")
    max_steps: int = _f(0, "cap on optimizer steps per phase (0 = none)")
    max_minutes: float = _f(10.0, "time budget of the whole fit in minutes, both phases and their last "
                            "validation included: steps stop when one more and a validation would not fit, "
                            "and the best weights are kept (0 = none; trainer/students/base.py Budget)")
    incremental: bool = _f(False, "continue from the current model on data new since its snapshot, with replay")
    replay: float = _f(1.0, "incremental: older rows replayed per new row")
    augment: bool = _f(False, "one RQ2 round: train, augment around validation mistakes, retrain")
    contrastive: bool = _f(True, "contrastive augmentation of explicit requests: direction flipped (label "
                           "mirrored), amount scaled, clauses recombined: --contrastive-kinds (trainer/contrastive.py)")
    contrastive_kinds: str = _f("flip", "comma-separated contrastive kinds: flip, scale, recombine (flip alone "
                                "matched all three at equal epochs on about half the rows; docs/benchmarks.md)")
    library_rows: bool = _f(True, "add offline-teacher-labelled requests for every phrase of the teacher's look library "
                            "(augmented, label_source 'library'; held-out intent groups screened out; only with --auto-augment, "
                            "so --no-auto-augment turns every automatic augmentation off; trainer/library_rows.py)")
    library_per_phrase: int = _f(3, "library rows: requests per look-library phrase (the first plainly framed, the "
                                 "rest with a strength modifier; trainer/library_rows.py PER_PHRASE)")
    pool_rows: int = _f(2000, "add up to N offline-teacher-labelled requests of the shared real-request pool "
                        "(<real_requests_dir>/pool.txt, when present; augmented, label_source 'pool'; held-out intent "
                        "groups screened out; only with --auto-augment; 0 = none; trainer/pool_rows.py)")
    grammar_rows: int = _f(1500, "add up to N offline-teacher-labelled explicit requests drawn from the request "
                           "grammar (streams/vocabulary.py; augmented, label_source 'grammar'; held-out intent groups "
                           "screened out; only with --auto-augment; 0 = none; trainer/grammar_rows.py)")
    auto_augment: bool = _f(True, "paraphrase look slices with fewer than TONEFLOW_AUGMENT_MIN_SLICE examples")
    promote: bool = _f(True, "promote the candidate if it passes the gate")
    margin: float | None = _f(None, "gate margin (default: TONEFLOW_PROMOTE_MARGIN)")
    trigger_id: str | None = _f(None, "retrain trigger id: a second run with the same id is refused")
    seed: int | None = _f(None, "random seed (default: TONEFLOW_SEED)")
    threads: int | None = _f(None, "torch CPU threads (default: TONEFLOW_TORCH_THREADS; 0 = auto: the cores "
                                   "not already busy, since oversubscribed threads are 5-10x slower)")
    progress: bool = _f(True, "show progress bars")

    def __post_init__(self) -> None:
        lora_modules(self.lora_targets)  # a typo fails here, before a snapshot is cut or a model loaded

    @classmethod
    def from_sources(cls, yaml_path: str | Path | None = None, **overrides: Any) -> TrainConfig:
        """Defaults < YAML file < overrides (None values in ``overrides`` mean "not given")."""
        data: dict[str, Any] = {}
        if yaml_path:
            loaded = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                msg = f"{yaml_path}: expected a mapping of train options"
                raise TrainerError(msg)
            data.update({k.replace("-", "_"): v for k, v in loaded.items()})
        data.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            msg = f"unknown train option(s): {', '.join(unknown)}; see `toneflow train --help`"
            raise TrainerError(msg)
        return cls(**data)


# The modules of a BERT layer (trainer/students/minilm.py) that --lora-targets may name.
LORA_MODULES = ("query", "key", "value", "dense")


def lora_modules(text: str) -> tuple[str, ...]:
    """``--lora-targets`` as module names; an empty list or an unknown name is a TrainerError naming the choices."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in LORA_MODULES]
    if not names or unknown:
        msg = (f"--lora-targets {text!r}: give a comma-separated list of {', '.join(LORA_MODULES)} "
               f"(e.g. query,value)")
        raise TrainerError(msg)
    return names


def add_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """One flag per field (but those in ``exclude``). Defaults are SUPPRESSed (absent from the
    namespace) so only flags actually given override the YAML, and the help shows the dataclass
    default instead of None."""
    parser.add_argument("--config", help="YAML file of train options (flags override it)")
    for f in fields(TrainConfig):
        if f.name in exclude:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_text = f"{f.metadata['help']} (default: {default})"
        if f.type in (bool, "bool"):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
            continue
        kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(f.type), str)
        parser.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS, choices=f.metadata.get("choices"),
                            help=help_text)


def from_args(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name, None) for f in fields(TrainConfig)}
    return TrainConfig.from_sources(args.config, **values)

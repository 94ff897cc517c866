"""The default student: the shipped MiniLM-L6 encoder + structured heads, LoRA by default.

Training runs in two phases, both early-stopped on validation overall, and both inside one time
budget (``FitConfig.max_minutes``; phase 1's head epochs may take ``HEADS_BUDGET_SHARE`` of it):
1. heads only, on the frozen encoder's outputs computed once (sentence embeddings, or token
   states for a pooler with weights; seconds per epoch on CPU, so the heads start from a good
   point instead of random noise);
2. LoRA adapters (peft) on the encoder's attention query/value projections plus the heads,
   end to end (``finetune="full"`` trains every encoder weight instead; "frozen" skips phase 2).
After fit the adapters are merged into the encoder, so serving is one plain forward pass.

``predict`` = tokenise + one forward pass under ``torch.inference_mode``; every output is valid
by construction (``structured.decode``). Runs on CUDA when present, else CPU.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from foundation.text_encoder import MINILM_ID, resolve_model_path
from schemas.edit import Edit
from schemas.filters import FILTER_CATALOGUE_VERSION
from trainer.data import Example
from trainer.exceptions import TrainerError
from trainer.metrics import score, sign_agreement
from trainer.students import structured
from trainer.students.base import Budget, FitConfig, FitReport, seed_everything, train_loop

Finetune = Literal["lora", "full", "frozen"]
Pooling = Literal["mean", "cls_mean", "attention", "multi", "labelwise"]
POOL_HEADS = 4  # "multi" pooling: learned token weightings (each its own softmax) next to the mean
# "labelwise" pooling: one learned token weighting per adjust / selective value, and one for the
# tools and filter heads (the last row); structured.build_heads(per_value=True) reads them
LABELWISE_QUERIES = structured.N_ADJ + structured.N_SEL + 1
ValMetric = Literal["overall", "overall+sign"]
LayerPick = Literal["first", "spread"]
_PREDICT_BATCH = 128
# Phase 1's head epochs (on cached encoder outputs) may use at most this share of
# FitConfig.max_minutes after the caching; what they leave goes to phase 2. Without a cap,
# label-wise pooling's phase 1 (it trains on cached token states) ran ~2 min outside the 10-minute
# budget of phase 2, and the acceptance job missed its 15 minutes (docs/benchmarks.md "Training").
HEADS_BUDGET_SHARE = 0.15


def build_pooler(mode: Pooling, hidden: int) -> Any:
    """Token states (batch × tokens × hidden) + attention mask → one vector per request.

    * ``mean``: the sentence-transformers pooling MiniLM was trained with;
    * ``cls_mean``: the first token's state next to the mean (2 × hidden);
    * ``attention``: a learned softmax weighting of the tokens next to the mean (2 × hidden), so a
      word like "reduce" can weigh more than the many words it shares with "increase" (issue 12);
    * ``multi``: ``POOL_HEADS`` such weightings, each with its own scores, next to the mean
      ((POOL_HEADS + 1) × hidden): one softmax has to share its weight between every attribute and
      direction word of "lower the brightness and raise the saturation"; several can each pick one;
    * ``labelwise``: one weighting per value the heads predict (``LABELWISE_QUERIES``), each next to
      the mean: batch × queries × (2 × hidden), not one vector. With one pooled vector for every
      head, "lessen the brightness and increase the saturation" has to carry which direction goes
      with which attribute in one place, and the student moved both the same way (issue 12); here
      the brightness value reads the tokens around "brightness", whose contextual states carry
      the direction word next to it.
    ``out_dim`` is the width the heads are built for (per query for ``labelwise``), ``per_value``
    whether the output has the query axis.
    """
    import torch
    from torch import nn

    def masked_mean(states: Any, attention_mask: Any) -> Any:
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    class Pooler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mode = mode
            heads = {"mean": 0, "cls_mean": 1, "attention": 1, "multi": POOL_HEADS, "labelwise": LABELWISE_QUERIES}[mode]
            self.per_value = mode == "labelwise"
            self.out_dim = 2 * hidden if self.per_value else (heads + 1) * hidden
            if mode in ("attention", "multi", "labelwise"):
                self.score = nn.Linear(hidden, heads)

        def weights(self, states: Any, attention_mask: Any) -> tuple[Any, Any]:
            """(each weighting's softmax over the tokens, batch × heads × tokens; the masked mean of
            the token states, batch × hidden): what the weighted modes pool from."""
            padding = attention_mask.unsqueeze(-1) == 0
            logits = self.score(states).masked_fill(padding, -1e4)  # batch × tokens × heads
            return logits.softmax(1).transpose(1, 2), masked_mean(states, attention_mask)

        def forward(self, states: Any, attention_mask: Any, unpooled: bool = False) -> Any:
            """The pooled vector(s); ``unpooled``: ``weights`` instead (a weighted mode), called as
            the module so that an ONNX export names the nodes ``/pooler/...``."""
            if unpooled:
                return self.weights(states, attention_mask)
            if self.mode in ("mean", "cls_mean"):
                mean = masked_mean(states, attention_mask)
                return mean if self.mode == "mean" else torch.cat([states[:, 0], mean], -1)
            weights, mean = self.weights(states, attention_mask)
            # a batched MatMul, not einsum: ONNX Runtime ran the Einsum node at ~3x the cost
            pooled = torch.matmul(weights, states)  # batch × heads × hidden
            if self.per_value:
                return torch.cat([pooled, mean.unsqueeze(1).expand_as(pooled)], -1)
            return torch.cat([pooled.flatten(1), mean], -1)

    return Pooler()


def keep_layers(depth: int, n: int, pick: LayerPick) -> list[int]:
    """Which ``n`` of an encoder's ``depth`` layers a shallower student keeps, bottom to top.

    ``first``: layers 0..n-1, whose output the pretrained model never used as a sentence embedding;
    ``spread``: evenly spaced from the first to the last (3 of 6: 0, 2, 5), so the top layer, which
    MiniLM's sentence-embedding training shaped most, stays. Idempotent on a saved student: its
    encoder already has ``n`` layers, and ``n`` of ``n`` is all of them.
    """
    if pick == "first" or n >= depth:
        return list(range(min(n, depth)))
    if n == 1:
        return [depth - 1]
    return [round(i * (depth - 1) / (n - 1)) for i in range(n)]


def _prune_layers(encoder: Any, keep: list[int]) -> None:
    from torch import nn

    layers = encoder.encoder.layer
    if keep == list(range(len(layers))):
        return
    encoder.encoder.layer = nn.ModuleList(layers[i] for i in keep)
    encoder.config.num_hidden_layers = len(keep)  # saved with the encoder: a reload builds len(keep) layers
    for i, layer in enumerate(encoder.encoder.layer):
        if hasattr(layer.attention.self, "layer_idx"):
            layer.attention.self.layer_idx = i  # cache slot of a decoder; kept consistent for a BERT encoder


# A --lora-targets name (trainer.config.LORA_MODULES) → the module-name suffixes of a BERT layer it means.
_LAYER_MODULES = {"dense": ("attention.output.dense", "intermediate.dense", "output.dense")}


@dataclass
class MiniLMConfig:
    model: str = MINILM_ID  # any HF id or local path of a BERT-style encoder
    finetune: Finetune = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("query", "value")  # names of trainer.config.LORA_MODULES (--lora-targets)
    max_length: int = 32  # look requests are short; 32 word pieces covers >99% of them
    layers: int = 0  # keep only N of the encoder's transformer layers (0 = all); serving cost is ~linear in N
    layer_pick: LayerPick = "first"  # which N: keep_layers
    # build_pooler; measured in docs/benchmarks.md "Student variants" (labelwise since round 6: +14 and
    # +9 real requests over "attention" on two snapshots)
    pooling: Pooling = "labelwise"
    warmup_epochs: int = 40  # phase 1 (heads on cached embeddings): cheap, early-stopped
    merge: bool = True  # merge adapters after fit (serving speed); False keeps the peft model
    heads: structured.HeadKind = structured.DEFAULT_HEADS  # build_heads: "regress", or "direction" classes
    sign_weight: float = 0.0  # structured.head_loss: hinge on the direction of each changed value (0 = off)
    # the epoch kept is the best on this: validation overall, or its mean with metrics.sign_agreement
    val_metric: ValMetric = "overall"
    fit: FitConfig = field(default_factory=FitConfig)


class MiniLMStudent:
    name = "minilm"

    def __init__(self, cfg: MiniLMConfig | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.cfg = cfg or MiniLMConfig()
        self.version: str | None = None
        path = resolve_model_path(self.cfg.model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        # a saved student's encoder config already holds its depth; passing it again is a no-op
        depth: dict[str, Any] = ({"num_hidden_layers": self.cfg.layers}
                                 if self.cfg.layers and self.cfg.layer_pick == "first" else {})
        if self.cfg.layers:
            from transformers import AutoConfig

            full = AutoConfig.from_pretrained(path).num_hidden_layers
            if not 0 < self.cfg.layers <= full:
                # more layers than the encoder has would add randomly initialised ones
                msg = f"layers={self.cfg.layers}: {self.cfg.model} has {full} encoder layers; give 1..{full}, or 0 for all"
                raise TrainerError(msg)
        self.encoder = AutoModel.from_pretrained(path, **depth)
        if self.cfg.layers and not depth:
            _prune_layers(self.encoder, keep_layers(self.encoder.config.num_hidden_layers, self.cfg.layers,
                                                    self.cfg.layer_pick))
        # The pooler, the heads and the adapters start from random weights: seeded here (and in
        # attach_adapters), not only in fit, so a config trains the same student whatever ran before
        # in the process (tests/test_trainer_students.py failed in the full suite and passed alone).
        seed_everything(self.cfg.fit.seed)
        self.pooler = build_pooler(self.cfg.pooling, self.encoder.config.hidden_size)
        self.heads = structured.build_heads(self.pooler.out_dim, kind=self.cfg.heads, per_value=self.pooler.per_value)
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.encoder.to(self.device)
        self.heads.to(self.device)
        self.pooler.to(self.device)
        self.trained = False

    # --- encoding -------------------------------------------------------------------------------
    def _tokens(self, prompts: Sequence[str], padding: bool | str = True) -> Any:
        return self.tokenizer(list(prompts), padding=padding, truncation=True, max_length=self.cfg.max_length,
                              return_tensors="pt").to(self.device)

    def _embed(self, prompts: Sequence[str]) -> Any:
        """Pooled token states (``build_pooler``)."""
        batch = self._tokens(prompts)
        return self.pooler(self.encoder(**batch).last_hidden_state, batch["attention_mask"])

    def heads_on_tokens(self, states: Any, attention_mask: Any) -> dict[str, Any]:
        """``heads(pooler(states, attention_mask))``; at inference with label-wise pooling, in the
        cheaper order of ``structured`` ``PerValueHeads.from_tokens`` (same values)."""
        if self.pooler.per_value and not (self.heads.training or self.pooler.training):
            weights, mean = self.pooler(states, attention_mask, unpooled=True)
            return self.heads(weights, states, mean)
        return self.heads(self.pooler(states, attention_mask))

    def _embed_all(self, prompts: Sequence[str]) -> Any:
        torch = self._torch
        self.encoder.eval()
        self.pooler.eval()
        with torch.inference_mode():
            parts = [self._embed(prompts[i:i + _PREDICT_BATCH]) for i in range(0, len(prompts), _PREDICT_BATCH)]
        return torch.cat(parts).clone()  # clone: inference tensors cannot enter autograd later

    def _states_all(self, prompts: Sequence[str]) -> tuple[Any, Any]:
        """Frozen token states of every prompt (for a pooler with weights): rows × longest × hidden,
        and the attention mask (0 on every position past a prompt's end, which poolers ignore).

        The prompts run through the encoder sorted by length, each batch padded only to its own
        longest: a masked pad token changes no real token's state, and most requests are far
        shorter than ``max_length``, so this costs a fraction of padding every batch to it.
        """
        torch = self._torch
        self.encoder.eval()
        lengths = [len(ids) for ids in self.tokenizer(list(prompts), truncation=True,
                                                       max_length=self.cfg.max_length)["input_ids"]]
        width = max(lengths, default=1)
        states = torch.zeros(len(prompts), width, self.encoder.config.hidden_size, device=self.device)
        masks = torch.zeros(len(prompts), width, dtype=torch.long, device=self.device)
        order = sorted(range(len(prompts)), key=lengths.__getitem__)
        with torch.inference_mode():
            for i in range(0, len(order), _PREDICT_BATCH):
                rows = order[i:i + _PREDICT_BATCH]
                batch = self._tokens([prompts[j] for j in rows])
                n = batch["input_ids"].shape[1]
                states[rows, :n] = self.encoder(**batch).last_hidden_state
                masks[rows, :n] = batch["attention_mask"]
        return states.clone(), masks.clone()

    def _top_params(self) -> list[Any]:
        return [*self.heads.parameters(), *self.pooler.parameters()]

    def _top_state(self) -> dict[str, Any]:
        """Heads and pooler weights in one flat dict (the pooler's under ``pooler.``), as saved."""
        state = dict(self.heads.state_dict())
        state.update({f"pooler.{k}": v for k, v in self.pooler.state_dict().items()})
        return {k: v.detach().clone() for k, v in state.items()}

    def _load_top(self, state: dict[str, Any]) -> None:
        self.heads.load_state_dict({k: v for k, v in state.items() if not k.startswith("pooler.")})
        self.pooler.load_state_dict({k[len("pooler."):]: v for k, v in state.items() if k.startswith("pooler.")})

    def _val_score(self, emb: Any, refs: list[Edit]) -> float:
        self.heads.eval()
        with self._torch.inference_mode():
            preds = structured.decode(self.heads(emb))
        overall = score(preds, refs).overall
        if self.cfg.val_metric == "overall+sign":
            return (overall + sign_agreement(preds, refs)) / 2
        return overall

    def attach_adapters(self) -> None:
        """Wrap the encoder with fresh LoRA adapters (no-op if attached or not in LoRA mode)."""
        if self.cfg.finetune != "lora" or hasattr(self.encoder, "peft_config"):
            return
        from peft import LoraConfig, get_peft_model

        # peft matches module names by suffix; "dense" would also match the sentence pooler's
        # (``pooler.dense``), which the student's forward pass never uses: name the layers' own three.
        targets = [suffix for name in self.cfg.lora_targets for suffix in _LAYER_MODULES.get(name, (name,))]
        lora = LoraConfig(r=self.cfg.lora_r, lora_alpha=self.cfg.lora_alpha, lora_dropout=self.cfg.lora_dropout,
                          target_modules=targets)
        seed_everything(self.cfg.fit.seed)
        self.encoder = get_peft_model(self.encoder, lora)

    # --- training -------------------------------------------------------------------------------
    def fit(self, train: Sequence[Example], val: Sequence[Example]) -> FitReport:
        """Both phases inside one budget (``fc.max_minutes``, ``Budget``): phase 1's head epochs
        for ``HEADS_BUDGET_SHARE`` of it at most, phase 2 until its end; ``report.phases`` says
        where the time went."""
        torch = self._torch
        fc = self.cfg.fit
        budget = Budget(fc.max_minutes)
        seed_everything(fc.seed)
        prompts = [r.prompt for r in train]
        targets = {k: v.to(self.device) for k, v in structured.encode_targets([r.edit_obj for r in train]).items()}
        val_prompts, val_refs = [r.prompt for r in val], [r.edit_obj for r in val]
        report = FitReport()

        def slice_targets(idx: list[int]) -> dict[str, Any]:
            return {k: v[idx] for k, v in targets.items()}

        # Phase 1: heads (and pooler) on the frozen encoder's cached outputs.
        opt = torch.optim.AdamW(self._top_params(), lr=fc.head_lr, weight_decay=0.01)
        if any(True for _ in self.pooler.parameters()):
            states, masks = self._states_all(prompts)
            val_states, val_masks = self._states_all(val_prompts)

            def top(idx: Any) -> Any:
                return self.heads(self.pooler(states[idx], masks[idx]))

            def val_top() -> float:
                self.pooler.eval()
                with torch.inference_mode():
                    emb = self.pooler(val_states, val_masks)
                return self._val_score(emb, val_refs)
        else:
            emb, val_emb = self._embed_all(prompts), self._embed_all(val_prompts)

            def top(idx: Any) -> Any:
                return self.heads(emb[idx])

            def val_top() -> float:
                return self._val_score(val_emb, val_refs)
        # "cache": targets, and the frozen encoder's outputs of every train and validation prompt
        report.add_phase("cache", time.monotonic() - budget.start)

        def head_step(idx: list[int]) -> float:
            self.heads.train()
            self.pooler.train()
            loss = structured.head_loss(top(idx), slice_targets(idx), self.cfg.sign_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.detach().item()

        warm = FitConfig(**{**asdict(fc), "epochs": self.cfg.warmup_epochs if not self.trained else 5,
                            "patience": max(fc.patience, 4), "max_minutes": 0.0})
        train_loop(n_train=len(train), cfg=warm, step=head_step, validate=val_top,
                   snapshot=self._top_state, restore=self._load_top, desc="heads", report=report,
                   deadline=budget.deadline if self.cfg.finetune == "frozen" else budget.share(HEADS_BUDGET_SHARE),
                   n_val=len(val))
        if self.cfg.finetune == "frozen":
            self.trained = True
            report.seconds = time.monotonic() - budget.start
            return report

        # Phase 2: encoder (LoRA adapters or all weights) + heads, end to end.
        attach_start = time.monotonic()
        self.attach_adapters()  # the first one in a process imports peft: seconds
        enc_params = [p for p in self.encoder.parameters() if p.requires_grad]
        opt2 = torch.optim.AdamW([{"params": enc_params, "lr": fc.lr},
                                  {"params": self._top_params(), "lr": fc.lr}], weight_decay=0.01)
        report.add_phase("adapters", time.monotonic() - attach_start)

        def full_step(idx: list[int]) -> float:
            self.encoder.train()
            self.heads.train()
            self.pooler.train()
            out = self.heads(self._embed([prompts[i] for i in idx]))
            loss = structured.head_loss(out, slice_targets(idx), self.cfg.sign_weight)
            opt2.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params, 1.0)
            opt2.step()
            return loss.detach().item()

        def state() -> tuple[dict[str, Any], dict[str, Any]]:
            enc = {n: p.detach().clone() for n, p in self.encoder.named_parameters() if p.requires_grad}
            return enc, self._top_state()

        def restore(saved: tuple[dict[str, Any], dict[str, Any]]) -> None:
            params = dict(self.encoder.named_parameters())
            with torch.no_grad():
                for n, value in saved[0].items():
                    params[n].copy_(value)
            self._load_top(saved[1])

        train_loop(n_train=len(train), cfg=fc, step=full_step,
                   validate=lambda: self._val_score(self._embed_all(val_prompts), val_refs),
                   snapshot=state, restore=restore, desc=f"{self.cfg.finetune}", report=report,
                   deadline=budget.deadline, n_val=len(val))
        if self.cfg.merge and hasattr(self.encoder, "merge_and_unload"):
            merge_start = time.monotonic()
            self.encoder = self.encoder.merge_and_unload()
            report.add_phase("merge", time.monotonic() - merge_start)
        self.trained = True
        report.seconds = time.monotonic() - budget.start  # the whole fit: caching and merging too
        return report

    # --- serving --------------------------------------------------------------------------------
    def predict(self, prompts: Sequence[str]) -> list[Edit]:
        return [edit for out in self._head_batches(prompts) for edit in structured.decode(out)]

    def head_outputs(self, prompts: Sequence[str]) -> dict[str, Any]:
        """The heads' raw outputs for ``prompts`` (numpy arrays, a row per prompt), before decoding:
        ``structured.decode`` of them is ``predict``. For diagnostics that re-decode them differently
        (benchmarks/bench_completion.py ``--diagnose``)."""
        import numpy as np

        batches = list(self._head_batches(prompts))
        if not batches:
            return {}
        return {name: np.concatenate([b[name].numpy() for b in batches]) for name in batches[0]}

    def _head_batches(self, prompts: Sequence[str]) -> Iterator[dict[str, Any]]:
        torch = self._torch
        self.encoder.eval()
        self.heads.eval()
        self.pooler.eval()
        with torch.inference_mode():
            for i in range(0, len(prompts), _PREDICT_BATCH):
                batch = self._tokens(prompts[i:i + _PREDICT_BATCH])
                states = self.encoder(**batch).last_hidden_state
                yield self.heads_on_tokens(states, batch["attention_mask"])

    def quantize_int8(self) -> bool:
        """Serving option: dynamic int8 Linear layers (CPU; ``trainer.quantize``). Measured on the 8k
        acceptance model: p50 10 → 4 ms per prompt, overall 0.916 → 0.907. False where torch lacks it."""
        from trainer.quantize import torch_int8

        if self.device != "cpu":
            return False
        try:
            self.encoder = torch_int8(self.encoder)
        except (AttributeError, RuntimeError):
            return False
        return True

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        encoder = self.encoder.merge_and_unload() if hasattr(self.encoder, "merge_and_unload") else self.encoder
        encoder.save_pretrained(path / "encoder")
        self.tokenizer.save_pretrained(path / "encoder")
        save_file({k: v.cpu().contiguous() for k, v in self._top_state().items()}, str(path / "heads.safetensors"))
        cfg = asdict(self.cfg)
        cfg["model"] = "encoder"  # the saved, merged encoder, relative to this directory
        meta = {"student": self.name, "format": 1, "config": cfg, "filter_catalogue": FILTER_CATALOGUE_VERSION}
        (path / "student.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> MiniLMStudent:
        from safetensors.torch import load_file

        path = Path(path)
        meta = json.loads((path / "student.json").read_text(encoding="utf-8"))
        raw = dict(meta["config"])
        raw["model"] = str(path / raw.get("model", "encoder"))
        raw["lora_targets"] = tuple(raw.get("lora_targets", ("query", "value")))
        raw.setdefault("pooling", "mean")  # saved before the pooling knob: mean pooling was the only one
        raw.setdefault("heads", "regress")  # saved before the direction heads
        raw["fit"] = FitConfig(**raw.get("fit", {}))
        student = cls(MiniLMConfig(**raw))
        student._load_top(load_file(str(path / "heads.safetensors"), device=student.device))
        student.trained = True
        student.encoder.eval()
        student.heads.eval()
        student.pooler.eval()
        return student

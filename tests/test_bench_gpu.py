"""benchmarks/bench_gpu.py: its --tiny CPU table (subprocess), the real shapes' LoRA/QLoRA steps on CUDA,
and scripts/gpu_check.sh's syntax."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench_gpu.py"
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(stdout: str) -> dict[tuple[str, str], dict[str, str]]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for ln in lines[1:]:
        cells = dict(zip(header, (c.strip() for c in ln.strip("|").split("|"))))
        rows[(cells["model"], cells["row"])] = cells
    return rows


def _positive(text: str) -> float:
    value = float(text)
    assert value > 0 and math.isfinite(value), text
    return value


@pytest.mark.slow
def test_tiny_cpu_table_has_every_row_with_positive_numbers() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(BENCH), "--tiny", "--device", "cpu", "--steps", "2", "--repeats", "2"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _parse(proc.stdout)
    gen = [f"{name} (tiny)" for name in ("flan-t5-base", "llama-1b")]
    expected = {(m, r) for m in gen for r in ("train LoRA bf16", "generate 80 tok", "train QLoRA nf4")}
    expected |= {("minilm", r) for r in ("train LoRA fp32", "train QLoRA nf4", "predict 1 req cuda", "predict 1 req cpu")}
    assert set(rows) == expected
    for model in gen:
        _positive(rows[(model, "train LoRA bf16")]["steps/s"])
        assert rows[(model, "train QLoRA nf4")]["steps/s"] == "needs CUDA"
        latency = rows[(model, "generate 80 tok")]
        assert _positive(latency["p95 s"]) >= _positive(latency["p50 s"])
        assert latency["reference"].startswith("paper 1.")
    _positive(rows[("minilm", "train LoRA fp32")]["steps/s"])
    assert rows[("minilm", "predict 1 req cuda")]["steps/s"] == "needs CUDA"
    _positive(rows[("minilm", "predict 1 req cpu")]["p50 s"])


def test_help_names_the_flags() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--device", "--tiny", "--steps", "--repeats"):
        assert flag in proc.stdout


def test_gpu_check_script_parses() -> None:
    proc = subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- on a GPU: the real shapes through the students' own LoRA and 4-bit paths ---------------------------
@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("kind", ["seq2seq", "causal"])
@pytest.mark.parametrize("four_bit", [False, True], ids=["lora-bf16", "qlora-nf4"])
def test_real_shape_lora_steps_on_cuda(kind: str, four_bit: bool, tmp_path: Path) -> None:
    from trainer.students.base import FitConfig
    from trainer.students.generative import GenConfig, student_for

    bench = _bench_module()
    base = bench.build_shaped(kind, tmp_path / kind, "cuda")
    rows = bench.training_rows(16)
    student = student_for(kind, GenConfig(model=str(base), load_in_4bit=four_bit, max_target_len=64,
                                          fit=FitConfig(epochs=1, batch_size=8, max_steps=3, progress=False)))
    if not four_bit:
        student.model.to(torch.bfloat16)
    student.attach_adapters()
    trainable = {n: p.detach().clone() for n, p in student.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    if four_bit:
        import bitsandbytes as bnb

        assert any(isinstance(m, bnb.nn.Linear4bit) for m in student.model.modules())
    torch.cuda.reset_peak_memory_stats()
    report = student.fit(rows, rows[:2])
    assert report.steps == 3 and all(math.isfinite(x) for x in report.losses)
    after = dict(student.model.named_parameters())
    assert any(not torch.equal(after[n], v) for n, v in trainable.items()), "no adapter weight moved"
    assert torch.cuda.max_memory_allocated() > 0
    assert len(student.predict(["golden hour"])) == 1

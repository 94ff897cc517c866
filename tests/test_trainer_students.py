"""Students on tiny data: the MiniLM default (LoRA) and the tiny generative students."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.edit import ADJUST_PARAMS, COLOUR_RANGES, Edit
from schemas.validation import validate_edit
from trainer.data import Example, make_example
from trainer.students.base import FitConfig

torch = pytest.importorskip("torch")
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (bitsandbytes 4-bit)")

LOOKS = {
    "golden hour": {"adjust": {"temperature": 30, "highlights": 20}, "filter": {"name": "warm_GoldenHour", "intensity": 60}},
    "film noir": {"adjust": {"contrast": 40, "saturation": -100}, "filter": {"name": "mono_Noir", "intensity": 80}},
    "cool morning": {"adjust": {"temperature": -25, "exposure": 10}},
    "lush greens": {"selective_adjust": {"green": {"saturation": 30, "luminance": 10}}},
}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models gain nothing from threads, and on a shared 2-core box thread hand-offs dominate.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FRAMES = ("{p}", "make it {p}", "{p} please", "give me {p}", "{p} look", "{p} vibe")


def _rows() -> list[Example]:
    return [make_example(f.format(p=p), e) for p, e in LOOKS.items() for f in FRAMES]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory):
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    student = MiniLMStudent(MiniLMConfig(merge=False, warmup_epochs=30,
                                         fit=FitConfig(epochs=2, batch_size=8, lr=2e-3, progress=False)))
    student.attach_adapters()
    before = {n: p.detach().clone() for n, p in student.encoder.named_parameters() if p.requires_grad}
    report = student.fit(_rows(), _rows())
    return student, before, report


def test_minilm_lora_trains_every_adapter_parameter(minilm) -> None:
    student, before, report = minilm
    assert before and all("lora_" in n for n in before)  # only adapters train; the base encoder is frozen
    after = dict(student.encoder.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n])]
    assert not unchanged
    assert report.losses[0] > min(report.losses)  # the loss is logged per epoch and goes down
    assert report.steps > 0 and report.val_scores


def test_minilm_learns_and_outputs_valid_edits(minilm) -> None:
    student, _, _ = minilm
    preds = student.predict(["golden hour", "film noir", "cool morning", "lush greens"])
    for pred, look in zip(preds, LOOKS.values(), strict=True):
        assert isinstance(pred, Edit) and validate_edit(pred.canonical_dict()) == pred
        assert set(pred.canonical_dict()) == set(look)
    assert preds[1].filter is not None and preds[1].filter.name == "mono_Noir"
    assert student.predict([]) == []


def test_minilm_head_outputs_are_what_predict_decodes(minilm) -> None:
    import importlib.util

    from trainer.students import structured
    from trainer.students.minilm import _PREDICT_BATCH

    student, _, _ = minilm
    prompts = [f"{p} please" if i % 2 else p for i, p in enumerate(list(LOOKS) * 60)][:_PREDICT_BATCH + 9]
    raw = student.head_outputs(prompts)  # two batches, joined
    assert raw and all(len(v) == len(prompts) for v in raw.values())
    assert structured.decode(raw) == student.predict(prompts)
    assert student.head_outputs([]) == {}

    # benchmarks/bench_completion.py --diagnose mixes a student's edits with the teacher's: an edit
    # mixed with itself is itself; each choice keeps its own side's parameters (sizes within 1..100).
    spec = importlib.util.spec_from_file_location(
        "bench_completion", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_completion.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for edit in student.predict(prompts[:4]):
        assert bench.students_choice(edit, edit) == edit
    teacher = Edit.model_validate({"adjust": {"brightness": -30, "contrast": 12}, "filter": {"name": "mono_Noir"},
                                   "selective_adjust": {"blue": {"saturation": 20}}})
    sizes = [0.0] * len(bench._values(teacher))
    sizes[ADJUST_PARAMS.index("brightness")], sizes[ADJUST_PARAMS.index("contrast")] = 55.4, 0.2
    sizes[len(ADJUST_PARAMS) + 3 * COLOUR_RANGES.index("blue") + 1] = 140.0
    assert bench.teachers_choice(teacher, sizes).canonical_dict() == {
        "adjust": {"contrast": 1, "brightness": -55}, "selective_adjust": {"blue": {"saturation": 100}},
        "filter": {"name": "mono_Noir", "intensity": 100}}
    student_edit = Edit.model_validate({"adjust": {"brightness": 20, "saturation": 9}})
    assert bench.students_choice(teacher, student_edit).canonical_dict() == {
        "adjust": {"brightness": -30, "saturation": 9}}


def test_minilm_save_load_round_trip(minilm, tmp_path: Path) -> None:
    from trainer.students.minilm import MiniLMStudent

    student, _, _ = minilm
    prompts = ["golden hour please", "noir", "something else entirely"]
    expected = student.predict(prompts)
    student.save(tmp_path / "m")
    assert (tmp_path / "m" / "student.json").exists() and (tmp_path / "m" / "heads.safetensors").exists()
    loaded = MiniLMStudent.load(tmp_path / "m")
    assert loaded.predict(prompts) == expected  # adapters merged on save: same outputs, plain encoder
    assert not hasattr(loaded.encoder, "peft_config")


@pytest.mark.parametrize("pooling", ["cls_mean", "attention", "multi", "labelwise"])
def test_minilm_poolings_train_save_load_and_export(pooling: str, tmp_path: Path) -> None:
    from trainer.onnx_export import export_student
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    student = MiniLMStudent(MiniLMConfig(pooling=pooling, warmup_epochs=3,  # type: ignore[arg-type]
                                         fit=FitConfig(epochs=1, batch_size=8, max_steps=3, progress=False)))
    before = {k: v.clone() for k, v in student.pooler.state_dict().items()}
    student.fit(_rows(), _rows())
    after = student.pooler.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)  # a learned pooler learns in both phases
    assert (pooling in ("attention", "multi", "labelwise")) == bool(before)
    prompts = ["golden hour please", "make it a lot less bright", "x"]
    expected = student.predict(prompts)
    student.save(tmp_path / "m")
    loaded = MiniLMStudent.load(tmp_path / "m")
    assert loaded.cfg.pooling == pooling and loaded.predict(prompts) == expected
    meta = export_student(loaded, tmp_path / "onnx")  # raises if the graph's pooling differs from PyTorch's
    assert meta["parity"]["fp32_max_abs_diff"] <= 1e-3


def test_minilm_saved_before_the_pooling_and_heads_knobs_loads_as_it_was_trained(tmp_path: Path) -> None:
    import json

    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    # the defaults moved (labelwise pooling, direction heads): a save without those fields is a
    # mean-pooled regression student and must not be rebuilt with the new defaults' shapes
    student = MiniLMStudent(MiniLMConfig(pooling="mean", heads="regress", warmup_epochs=2,
                                         fit=FitConfig(epochs=1, batch_size=8, max_steps=2, progress=False)))
    student.fit(_rows(), _rows())
    prompts = ["make it a lot less bright", "golden hour please"]
    expected = student.predict(prompts)
    student.save(tmp_path / "m")
    meta_path = tmp_path / "m" / "student.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["pooling"], meta["config"]["heads"]
    meta_path.write_text(json.dumps(meta))
    loaded = MiniLMStudent.load(tmp_path / "m")
    assert (loaded.cfg.pooling, loaded.cfg.heads) == ("mean", "regress")
    assert not loaded.pooler.per_value and loaded.predict(prompts) == expected


def test_minilm_shallower_encoder_keeps_its_depth_through_save_and_load(tmp_path: Path) -> None:
    from trainer.exceptions import TrainerError
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    student = MiniLMStudent(MiniLMConfig(layers=3, warmup_epochs=2,
                                         fit=FitConfig(epochs=1, batch_size=8, max_steps=2, progress=False)))
    assert len(student.encoder.encoder.layer) == 3
    student.fit(_rows(), _rows())
    prompts = ["make it a lot less bright", "golden hour please"]
    expected = student.predict(prompts)
    student.save(tmp_path / "m")
    loaded = MiniLMStudent.load(tmp_path / "m")
    assert len(loaded.encoder.encoder.layer) == 3 and loaded.predict(prompts) == expected
    with pytest.raises(TrainerError, match="has 6 encoder layers"):
        MiniLMStudent(MiniLMConfig(layers=7))  # would add a randomly initialised seventh layer


def test_minilm_spread_layers_keep_the_top_layer_through_fit_save_load_and_onnx(tmp_path: Path) -> None:
    from transformers import AutoModel

    from foundation.text_encoder import MINILM_ID, resolve_model_path
    from trainer.onnx_export import export_student
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent, keep_layers

    assert keep_layers(6, 3, "spread") == [0, 2, 5] and keep_layers(6, 3, "first") == [0, 1, 2]
    assert keep_layers(3, 3, "spread") == [0, 1, 2]  # a saved 3-layer encoder is kept whole on load
    full = AutoModel.from_pretrained(resolve_model_path(MINILM_ID)).encoder.layer
    student = MiniLMStudent(MiniLMConfig(layers=3, layer_pick="spread", finetune="frozen", warmup_epochs=2,
                                         fit=FitConfig(epochs=1, batch_size=8, max_steps=2, progress=False)))
    kept = student.encoder.encoder.layer
    assert len(kept) == 3 and student.encoder.config.num_hidden_layers == 3
    for mine, theirs in zip(kept, (full[0], full[2], full[5]), strict=True):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values(), strict=True))
    student.fit(_rows(), _rows())
    prompts = ["make it a lot less bright", "golden hour please"]
    expected = student.predict(prompts)
    student.save(tmp_path / "m")
    loaded = MiniLMStudent.load(tmp_path / "m")
    assert loaded.cfg.layer_pick == "spread" and len(loaded.encoder.encoder.layer) == 3
    assert torch.equal(loaded.encoder.encoder.layer[2].output.dense.weight, full[5].output.dense.weight)
    assert loaded.predict(prompts) == expected
    meta = export_student(loaded, tmp_path / "onnx")
    assert meta["parity"]["fp32_max_abs_diff"] <= 1e-3


def test_train_flags_reach_the_student_layer_pick() -> None:
    import argparse

    from trainer.config import DEPTH_RECIPES, add_arguments, from_args
    from trainer.train import build_student

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = from_args(parser.parse_args(["--layers", "3", "--layer-pick", "spread", "--progress"]))
    student = build_student("minilm", cfg, seed=0)
    assert (student.cfg.layers, student.cfg.layer_pick) == (3, "spread") and len(student.encoder.encoder.layer) == 3
    shallow = DEPTH_RECIPES["shallow3"]
    assert shallow.layers == 3 and shallow.epochs == 2 * DEPTH_RECIPES["full"].epochs  # same minutes, 2x epochs


def test_train_default_is_the_two_layer_recipe() -> None:
    from trainer.config import DEPTH_RECIPE, DEPTH_RECIPES, TrainConfig
    from trainer.students.minilm import keep_layers
    from trainer.train import build_student

    cfg = TrainConfig(progress=False)
    assert DEPTH_RECIPE is DEPTH_RECIPES["shallow2"]
    assert (cfg.layers, cfg.layer_pick, cfg.epochs) == (2, "spread", 18)
    assert keep_layers(6, 2, "spread") == [0, 5]  # the bottom layer and the sentence-embedding top one
    assert DEPTH_RECIPE.epochs == 3 * DEPTH_RECIPES["full"].epochs  # a third of the layers: 3x epochs, same minutes
    student = build_student("minilm", cfg, seed=0)
    assert len(student.encoder.encoder.layer) == 2 and student.cfg.fit.epochs == 18


def test_lora_targets_flag_puts_adapters_on_every_linear_layer_but_the_unused_pooler() -> None:
    import argparse

    from trainer.config import TrainConfig, add_arguments, from_args
    from trainer.exceptions import TrainerError
    from trainer.train import build_student

    assert build_student("minilm", TrainConfig(progress=False), seed=0).cfg.lora_targets == ("query", "value")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = from_args(parser.parse_args(["--lora-targets", " query,key, value,dense,query "]))
    student = build_student("minilm", cfg, seed=0)
    assert student.cfg.lora_targets == ("query", "key", "value", "dense")
    student.attach_adapters()
    adapted = {n.split(".lora_A")[0].split("layer.")[-1] for n, _ in student.encoder.named_parameters() if ".lora_A" in n}
    assert adapted == {f"{layer}.{m}" for layer in ("0", "1") for m in (  # both kept layers, all six linear layers
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense")}  # and no adapter on the sentence pooler, outside the forward pass
    for bad in ("query,ffn", " , "):
        with pytest.raises(TrainerError, match="query, key, value, dense"):
            from_args(parser.parse_args(["--lora-targets", bad]))


def test_cached_token_states_match_padding_every_prompt_to_max_length() -> None:
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    student = MiniLMStudent(MiniLMConfig(pooling="labelwise"))
    prompts = ["golden hour", "make it a lot brighter and lower the saturation by 20%, the sky is washed out",
               "noir", "warm it up a touch", "x"] * 30  # 150 prompts: two length-sorted batches of the cache
    states, masks = student._states_all(prompts)
    with torch.inference_mode():
        batch = student._tokens(prompts, padding="max_length")
        reference = student.encoder(**batch).last_hidden_state
    width = states.shape[1]
    assert width < student.cfg.max_length and int(batch["attention_mask"][:, width:].sum()) == 0
    assert torch.equal(masks, batch["attention_mask"][:, :width])  # every row back in its own place
    real = masks.bool()
    assert torch.allclose(states[real], reference[:, :width][real], atol=1e-4)
    with torch.inference_mode():
        assert torch.allclose(student.pooler(states, masks), student.pooler(reference, batch["attention_mask"]),
                              atol=1e-4)


@pytest.mark.parametrize("kind", ["seq2seq", "causal"])
def test_tiny_generative_students_train_and_emit_valid_edits(kind: str, tmp_path: Path) -> None:
    from trainer.students.generative import GenConfig, student_for
    from trainer.students.tiny import build_tiny

    base = build_tiny(kind, tmp_path / "base")
    rows = _rows()[:8]
    student = student_for(kind, GenConfig(model=str(base), max_target_len=48, lora_r=4,
                                          fit=FitConfig(epochs=1, batch_size=4, max_steps=2, progress=False)))
    student.attach_adapters()
    before = {n: p.detach().clone() for n, p in student.model.named_parameters() if p.requires_grad}
    report = student.fit(rows, rows)
    assert report.steps == 2 and len(report.losses) == 1 and report.losses[0] > 0
    after = dict(student.model.named_parameters())
    assert all("lora_" in n for n in before)
    assert [n for n, p in before.items() if torch.equal(p, after[n])] == []
    preds = student.predict(["golden hour", "film noir"])
    assert len(preds) == 2 and all(validate_edit(p.canonical_dict()) == p for p in preds)
    student.save(tmp_path / "saved")
    loaded = type(student).load(tmp_path / "saved")
    assert loaded.predict(["golden hour", "film noir"]) == preds


def test_tiny_seq2seq_full_finetune_memorises_an_edit(tmp_path: Path) -> None:
    """Decoding end to end: a tiny T5 fine-tuned on one example writes that edit back, valid."""
    from trainer.students.generative import GenConfig, student_for
    from trainer.students.tiny import build_tiny

    base = build_tiny("seq2seq", tmp_path / "base", d_model=64)
    rows = [make_example("warm", {"adjust": {"contrast": 10}})]
    student = student_for("seq2seq", GenConfig(model=str(base), finetune="full", max_target_len=40,
                                               fit=FitConfig(epochs=150, batch_size=1, lr=3e-3, patience=150,
                                                             progress=False)))
    student.fit(rows, rows)
    assert student.predict(["warm"]) == [Edit.model_validate({"adjust": {"contrast": 10}})]


def test_salvage_closes_truncated_json() -> None:
    from trainer.students.generative import salvage_json

    assert salvage_json('x {"adjust":{"contrast":10,"tint":') == '{"adjust":{"contrast":10}}'
    assert salvage_json('{"filter":{"name":"mono_Noir","intensity":40}}') == '{"filter":{"name":"mono_Noir","intensity":40}}'


@pytest.mark.gpu
@requires_cuda
def test_causal_4bit_loading(tmp_path: Path) -> None:
    from trainer.students.generative import GenConfig, student_for
    from trainer.students.tiny import build_tiny

    base = build_tiny("causal", tmp_path / "base", d_model=64)
    student = student_for("causal", GenConfig(model=str(base), load_in_4bit=True, max_target_len=32,
                                              fit=FitConfig(epochs=1, batch_size=4, max_steps=2, progress=False)))
    report = student.fit(_rows()[:4], _rows()[:4])
    assert report.steps == 2
    assert all(isinstance(p, Edit) for p in student.predict(["golden hour"]))


def test_4bit_without_cuda_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present: 4-bit loads")
    from trainer.exceptions import TrainerError
    from trainer.students.generative import GenConfig, student_for
    from trainer.students.tiny import build_tiny

    base = build_tiny("causal", tmp_path / "base")
    with pytest.raises(TrainerError, match="needs CUDA"):
        student_for("causal", GenConfig(model=str(base), load_in_4bit=True))


def test_sign_hinge_charges_only_the_wrong_direction() -> None:
    from schemas.edit import ADJUST_PARAMS
    from trainer.students import structured

    ref = [Edit.model_validate({"adjust": {"brightness": -30, "contrast": 4}})]
    tgt = structured.encode_targets(ref)

    def loss(brightness: float, contrast: float, sign_weight: float) -> float:
        adj = torch.zeros(1, structured.N_ADJ)
        adj[0, ADJUST_PARAMS.index("brightness")] = brightness / 100
        adj[0, ADJUST_PARAMS.index("contrast")] = contrast / 100
        out = {"tools": torch.tensor([[9.0, -9.0, -9.0]]), "adj": adj, "adj_gate": tgt["adj_gate"] * 18 - 9,
               "sel": torch.zeros(1, structured.N_SEL), "sel_gate": torch.zeros(1, structured.N_SEL),
               "filter": torch.zeros(1, structured.N_FILT), "intensity": torch.zeros(1)}
        return float(structured.head_loss(out, tgt, sign_weight))

    # Same regression error (20 points) either side of the reference: without the hinge they cost
    # the same; with it, only the prediction that brightens instead of darkening costs more.
    assert loss(-50, 4, 0.0) == pytest.approx(loss(-10, 4, 0.0))
    assert loss(-50, 4, 1.0) == pytest.approx(loss(-50, 4, 0.0))
    assert loss(-10, 4, 1.0) == pytest.approx(loss(-10, 4, 0.0))  # right way by >= the 10-point margin
    assert loss(10, 4, 1.0) > loss(10, 4, 0.0)
    # a reference smaller than the margin (contrast 4) asks for its own size only
    assert loss(-30, 4, 1.0) == pytest.approx(loss(-30, 4, 0.0))
    assert loss(-30, -4, 1.0) > loss(-30, -4, 0.0)


def _fit_heads(kind: str, x: torch.Tensor, refs: list[Edit], steps: int = 300, rows: int = 1) -> list[Edit]:
    """Fit fresh heads of ``kind`` to ``refs`` on fixed features ``x``; the decoded edits of the first ``rows``."""
    from trainer.students import structured

    torch.manual_seed(0)
    heads = structured.build_heads(x.shape[1], dropout=0.0, kind=kind)  # type: ignore[arg-type]
    tgt = structured.encode_targets(refs)
    opt = torch.optim.Adam(heads.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = structured.head_loss(heads(x), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    heads.eval()
    with torch.inference_mode():
        return structured.decode(heads(x[:rows]))


def test_direction_heads_take_the_likelier_side_at_full_size_and_a_tie_barely_moves() -> None:
    x = torch.randn(1, 16).repeat(8, 1)

    def brightness(ups: int) -> int:
        refs = [Edit.model_validate({"adjust": {"brightness": 30 if i < ups else -30}}) for i in range(8)]
        return _fit_heads("direction", x, refs)[0].canonical_dict()["adjust"]["brightness"]

    # 6 of 8 say up: the class is 75 / 25, the step is the full +30, not a mean of +15
    assert 25 <= brightness(6) <= 35
    assert -35 <= brightness(2) <= -25
    # a 50 / 50 tie gives a small step (the steep tanh sign, structured.SIGN_SHARPNESS), never a
    # full-size guess, so the int8 graph cannot flip a borderline value round at full size
    assert abs(brightness(4)) <= 10


def test_direction_heads_fit_opposite_clauses_and_amounts() -> None:
    x = torch.randn(3, 16)
    refs = [Edit.model_validate(e) for e in ({"adjust": {"brightness": 40, "saturation": -20}},
                                             {"adjust": {"brightness": -10}, "selective_adjust": {"blue": {"hue": 25}}},
                                             {"filter": {"name": "mono_Noir", "intensity": 70}})]
    preds = _fit_heads("direction", x, refs, rows=len(refs))
    for pred, ref in zip(preds, refs, strict=True):
        assert set(pred.canonical_dict()) == set(ref.canonical_dict())
        for tool in ("adjust", "selective_adjust"):
            want, got = ref.canonical_dict().get(tool, {}), pred.canonical_dict().get(tool, {})
            assert want.keys() == got.keys()
            for key, value in want.items():
                if tool == "adjust":
                    assert got[key] == pytest.approx(value, abs=3)
                else:
                    assert all(abs(got[key][c] - v) <= 3 for c, v in value.items()) and got[key].keys() == value.keys()


def test_minilm_direction_heads_train_save_load_and_export(tmp_path: Path) -> None:
    from trainer.onnx_export import OUTPUTS, export_student
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    student = MiniLMStudent(MiniLMConfig(heads="direction", warmup_epochs=3,
                                         fit=FitConfig(epochs=1, batch_size=8, max_steps=3, progress=False)))
    student.fit(_rows(), _rows())
    prompts = ["golden hour please", "make it a lot less bright", "x"]
    expected = student.predict(prompts)
    student.save(tmp_path / "m")
    loaded = MiniLMStudent.load(tmp_path / "m")
    assert loaded.cfg.heads == "direction" and loaded.predict(prompts) == expected
    meta = export_student(loaded, tmp_path / "onnx")  # the same seven outputs: decode reads both paths alike
    assert meta["outputs"] == list(OUTPUTS) and meta["parity"]["fp32_max_abs_diff"] <= 1e-3


@pytest.mark.parametrize("heads", ["direction", "regress"])
def test_labelwise_heads_from_token_states_equal_the_pooled_path(heads: str) -> None:
    """Inference runs the per-value heads from the pooler's weights over the token states (the
    value projection once per token, not once per value: ``PerValueHeads.from_tokens``); that must
    give what training's order gives, padding included, and training must not take it."""
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    student = MiniLMStudent(MiniLMConfig(pooling="labelwise", heads=heads))  # type: ignore[arg-type]
    torch.manual_seed(0)
    with torch.no_grad():  # away from the initial zeros, so every term counts
        for p in [*student.heads.parameters(), *student.pooler.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    student.encoder.eval()
    student.heads.eval()
    student.pooler.eval()
    batch = student._tokens(["golden hour", "lower the brightness and raise the saturation a lot, the sky is grey", "x"])
    with torch.inference_mode():
        states = student.encoder(**batch).last_hidden_state
        pooled = student.heads(student.pooler(states, batch["attention_mask"]))
        fused = student.heads_on_tokens(states, batch["attention_mask"])
    assert fused.keys() == pooled.keys()
    assert max(float((fused[k] - pooled[k]).abs().max()) for k in pooled) < 1e-4
    assert max(float(pooled[k].abs().max()) for k in ("adj", "sel")) > 0.01  # not trivially equal
    student.heads.train()
    with torch.inference_mode():
        weights, mean = student.pooler(states, batch["attention_mask"], unpooled=True)
        with pytest.raises(RuntimeError, match="inference path"):
            student.heads(weights, states, mean)

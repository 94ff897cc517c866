"""The ONNX student for real: a real registry with MiniLM students, promote stores the export, the
server and ``predict`` run it in ONNX Runtime, a damaged or missing export falls back to PyTorch."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from foundation.settings import Settings
from schemas import validate_edit
from serving.models import load_version
from serving.ort_student import OrtStudent
from serving.testing import edit, live_server, register_students, wait_for
from trainer import onnx_export, registry
from trainer.exceptions import CorruptModel
from trainer.students.minilm import MiniLMStudent

PROMPTS = ["golden hour", "Morocco", "make it moodier", "cool morning in the mountains", "x", "teal and orange " * 12]


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory):
    """Two MiniLM versions; v1 promoted (so exported), v2 registered only."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("ort") / "data", serve_reload_interval_s=0.2)
    v1, v2 = register_students(settings, 2)
    outcome = registry.promote(settings, v1)
    return settings, v1, v2, outcome


def test_promote_stores_a_hash_verified_export_beside_the_version(promoted) -> None:
    settings, v1, v2, outcome = promoted
    assert outcome["export"] == "stored"
    root = registry.verified_export(settings, v1)
    assert root is not None and root.parent.name == "exports"
    files = json.loads((root / registry.MANIFEST).read_text())["files"]
    assert set(files) == {onnx_export.FP32_FILE, onnx_export.INT8_FILE, onnx_export.META_FILE}
    assert (root / onnx_export.INT8_FILE).stat().st_size < (root / onnx_export.FP32_FILE).stat().st_size / 3
    assert registry.verified_export(settings, v2) is None  # only promoted versions are exported
    registry.verify(settings, v1)  # the version itself is untouched: its manifest still matches


def test_onnx_fp32_matches_pytorch_and_int8_stays_close(promoted) -> None:
    settings, v1, _, _ = promoted
    torch_student = MiniLMStudent.load(registry.model_path(settings, v1))
    root = registry.verified_export(settings, v1)
    assert root is not None
    fp32 = OrtStudent(registry.model_path(settings, v1), root, int8=False)
    int8 = OrtStudent(registry.model_path(settings, v1), root, int8=True)
    assert fp32.predict(PROMPTS) == torch_student.predict(PROMPTS)  # same edits, field for field
    # the Rust tokenizer called directly gives the ids the transformers tokenizer gives
    want = torch_student.tokenizer(PROMPTS, padding=True, truncation=True, max_length=torch_student.cfg.max_length)
    got = fp32.tokenizer.encode_batch(PROMPTS)
    assert [e.ids for e in got] == want["input_ids"] and [e.attention_mask for e in got] == want["attention_mask"]
    # raw head outputs of the int8 graph are near the fp32 ones (the gate on quality is the benchmark)
    enc = fp32.tokenizer.encode_batch(PROMPTS)
    feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
    a, b = fp32.session.run(None, feeds), int8.session.run(None, feeds)
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) < 0.25
    assert all(validate_edit(e.canonical_dict()) for e in int8.predict(PROMPTS))
    assert int8.predict([]) == []


def test_the_served_int8_graph_keeps_the_chosen_nodes_fp32(promoted) -> None:
    """ONNX_INT8's choice is what the stored int8 file holds: the heads and pooler fp32, every
    matrix product of the encoder int8, and beside each attention and FFN output projection an fp32
    product over its ``outlier_channels`` largest input channels. The choice cannot drift silently."""
    import onnx

    from trainer.quantize import ONNX_INT8, fp32_node_names

    settings, v1, _, _ = promoted
    root = registry.verified_export(settings, v1)
    assert root is not None
    fp32_graph = onnx.load(str(root / onnx_export.FP32_FILE)).graph
    int8_graph = onnx.load(str(root / onnx_export.INT8_FILE)).graph
    chosen = fp32_node_names(fp32_graph, ONNX_INT8["fp32_nodes"])
    assert any(n.startswith("/heads/") for n in chosen) and any(n.startswith("/pooler/") for n in chosen)
    assert not any(n.startswith("/encoder/") for n in chosen)
    layers = sum(n.op_type == "Attention" for n in fp32_graph.node)
    projections = [f"/encoder/encoder/layer.{i}/{part}output/dense/MatMul" for i in range(layers)
                   for part in ("attention/", "")]
    outlier_paths = [f"{name}/outlier_MatMul" for name in projections]
    meta = json.loads((root / onnx_export.META_FILE).read_text())
    assert sorted(meta["int8_fp32_nodes"]) == sorted(chosen + outlier_paths) and meta["int8"] == ONNX_INT8
    weights = {t.name: t for t in int8_graph.initializer}
    by_name = {n.name: n for n in int8_graph.node}
    for name in (n for n in chosen + outlier_paths if n.endswith("MatMul") or n.endswith("Gemm")):
        node = by_name.get(name) or by_name.get(f"{name}_MatMul")  # the quantiser splits a Gemm into MatMul + Add
        assert node is not None and node.op_type in {"MatMul", "Gemm"}, name  # not rewritten into an int8 op
        assert all(weights[i].data_type == onnx.TensorProto.FLOAT for i in node.input if i in weights), name
    for name in outlier_paths:  # (tokens x k) @ (k x hidden): k channels split off, in fp32
        assert weights[by_name[name].input[1]].dims[0] == ONNX_INT8["outlier_channels"] > 0
    int8_ops = [n.op_type for n in int8_graph.node]
    assert int8_ops.count("QAttention") == layers and "Attention" not in int8_ops
    assert "QEmbedLayerNormalization" in int8_ops
    # per layer: the attention output, FFN input and FFN output projections are int8, with
    # per-channel weights (one scale per output column)
    assert int8_ops.count("MatMulInteger") == 3 * layers
    for node in (n for n in int8_graph.node if n.op_type == "MatMulInteger"):
        weight_zero_point = weights[node.input[3]]
        assert len(weight_zero_point.dims) == 1 and weight_zero_point.dims[0] > 1, node.name


def test_fp32_node_patterns_that_match_nothing_are_an_error(promoted, tmp_path) -> None:
    from trainer.quantize import onnx_int8

    settings, v1, _, _ = promoted
    root = registry.verified_export(settings, v1)
    assert root is not None
    with pytest.raises(ValueError, match="no node of the graph matches"):
        onnx_int8(root / onnx_export.FP32_FILE, tmp_path / "x.onnx", fp32_nodes=[r"^/no/such/scope/"])
    assert not (tmp_path / "x.onnx").exists()


def test_unsigned_weights_are_a_quantiser_option_not_the_stored_form(promoted, tmp_path) -> None:
    """``weight_type="QUInt8"`` (round 11 tried u8 x u8 on AVX2, docs/benchmarks.md) writes uint8 weights; the
    stored form keeps signed ones."""
    import onnx

    from trainer.quantize import onnx_int8

    settings, v1, _, _ = promoted
    root = registry.verified_export(settings, v1)
    assert root is not None
    onnx_int8(root / onnx_export.FP32_FILE, tmp_path / "u8.onnx", weight_type="QUInt8", per_channel=False,
              outlier_channels=0)

    def weight_types(path) -> set[int]:
        graph = onnx.load(str(path)).graph
        weights = {t.name: t.data_type for t in graph.initializer}
        return {weights[n.input[1]] for n in graph.node if n.op_type == "MatMulInteger" and n.input[1] in weights}

    assert weight_types(tmp_path / "u8.onnx") == {onnx.TensorProto.UINT8}
    assert weight_types(root / onnx_export.INT8_FILE) == {onnx.TensorProto.INT8}


def test_outlier_channels_split_off_keep_the_maths_and_leave_the_int8_input_flat(promoted, tmp_path) -> None:
    """``split_outliers`` gives each output projection an fp32 path for its largest input channels:
    the fp32 graph still computes the same heads, the int8 product's input no longer has a channel
    far above the rest, and the quantiser leaves the fp32 path alone."""
    import onnx

    from foundation.onnx_graphs import load_tokenizer, session, token_feeds
    from trainer.quantize import CALIBRATION_PROMPTS, ONNX_INT8, onnx_int8, split_outliers

    settings, v1, _, _ = promoted
    root = registry.verified_export(settings, v1)
    assert root is not None
    tokenizer, pad = load_tokenizer(registry.model_path(settings, v1) / "encoder" / "tokenizer.json", 32)
    calibration, feeds = token_feeds(tokenizer, pad, CALIBRATION_PROMPTS), token_feeds(tokenizer, pad, PROMPTS)
    model = onnx.load(str(root / onnx_export.FP32_FILE))
    layers = sum(n.op_type == "Attention" for n in model.graph.node)
    inputs = {n.name: n.input[0] for n in model.graph.node if n.input}
    added = split_outliers(model, calibration, channels=4, patterns=ONNX_INT8["outlier_nodes"])
    projections = [name.removesuffix("/outlier_MatMul") for name in added]
    assert len(added) == 2 * layers  # each layer's attention output and FFN output projection
    assert all(name.endswith("/output/dense/MatMul") for name in projections)
    split_path = tmp_path / "split.onnx"
    onnx.save(model, str(split_path))

    def largest_over_typical(path, names: list[str]) -> list[float]:
        """Per tensor: its largest channel's max |x| over the median channel's, on the test prompts."""
        probe = onnx.load(str(path))
        for name in names:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        onnx.save(probe, str(tmp_path / "probe.onnx"))
        real = feeds["attention_mask"].astype(bool)
        peaks = [np.abs(x[real]).max(axis=0) for x in session(tmp_path / "probe.onnx").run(names, feeds)]
        return [float(p.max() / np.median(p)) for p in peaks]

    before = largest_over_typical(root / onnx_export.FP32_FILE, [inputs[name] for name in projections])
    after = largest_over_typical(split_path, [f"{name}/inliers" for name in projections])
    assert max(after) < max(before) / 2, (before, after)
    a, b = session(root / onnx_export.FP32_FILE).run(None, feeds), session(split_path).run(None, feeds)
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) < 1e-3  # same maths in fp32

    kept = onnx_int8(root / onnx_export.FP32_FILE, tmp_path / "int8.onnx", fp32_nodes=[r"^/heads/", r"^/pooler/"],
                     outlier_channels=4, calibration=calibration)
    assert set(added) <= set(kept)
    int8 = {n.name: n for n in onnx.load(str(tmp_path / "int8.onnx")).graph.node}
    assert all(int8[name].op_type == "MatMul" for name in added)  # the outlier path is fp32
    assert not any(n.op_type == "MatMul" and n.name in projections for n in int8.values())  # the rest is int8
    with pytest.raises(ValueError, match="calibration"):
        onnx_int8(root / onnx_export.FP32_FILE, tmp_path / "x.onnx", outlier_channels=4)
    assert not (tmp_path / "x.onnx").exists()


def test_serving_loads_the_export_and_falls_back_to_pytorch(promoted, tmp_path) -> None:
    import shutil

    settings, v1, v2, _ = promoted
    student = load_version(settings, v1)
    assert isinstance(student, OrtStudent) and student.runtime == "onnx-int8" and student.version == v1
    assert load_version(Settings(data_dir=settings.data_dir, serve_quantize=False), v1).runtime == "onnx-fp32"
    assert load_version(Settings(data_dir=settings.data_dir, student_runtime="torch"), v1).runtime == "torch-int8"
    assert load_version(settings, v2).runtime == "torch-int8"  # no export: PyTorch
    # a damaged export is refused by its hashes; the version still serves, through PyTorch
    copy = Settings(data_dir=tmp_path / "data")
    shutil.copytree(settings.data_path, copy.data_path)
    damaged = registry.export_dir(copy, v1) / onnx_export.INT8_FILE
    damaged.write_bytes(damaged.read_bytes()[:-16] + b"0123456789abcdef")
    with pytest.raises(CorruptModel, match="delete .* and promote again"):
        registry.verified_export(copy, v1)
    fallback = load_version(copy, v1)
    assert fallback.runtime == "torch-int8" and fallback.version == v1


def test_a_promote_whose_export_fails_still_promotes(tmp_path) -> None:
    from serving.testing import fake_version

    settings = Settings(data_dir=tmp_path / "data")
    v = fake_version(settings)  # placeholder files: the student cannot be loaded, so it cannot be exported
    outcome = registry.promote(settings, v)
    assert outcome["promoted"] and outcome["export"].startswith("failed: ")
    assert registry.resolve(settings) == v and registry.verified_export(settings, v) is None
    off = Settings(data_dir=tmp_path / "data", registry_export_onnx=False)
    assert registry.promote(off, fake_version(off, "b"), force=True)["export"].startswith("off")


def test_live_server_runs_onnx_and_hot_swaps_to_a_promoted_export(promoted) -> None:
    settings, v1, v2, _ = promoted
    with live_server(settings, emit_events=False) as url, httpx.Client(base_url=url, timeout=30) as client:
        health = client.get("/healthz").json()
        assert health["runtimes"] == {"current": "onnx-int8"} and health["models"] == {"current": v1}
        r = edit(client)
        assert r.status_code == 200 and r.json()["served_by"]["version"] == v1
        assert validate_edit(r.json()["edit"])
        assert registry.promote(settings, v2, force=True)["export"] == "stored"
        assert wait_for(lambda: client.get("/healthz").json()["models"] == {"current": v2}, 30)
        assert client.get("/healthz").json()["runtimes"] == {"current": "onnx-int8"}
        assert edit(client).json()["served_by"]["version"] == v2
    registry.rollback(settings)


def test_models_export_cli_then_predict_runs_the_export(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from foundation.settings import get_settings
    from toneflow.cli import main

    settings = Settings(data_dir=tmp_path / "data", registry_export_onnx=False)
    [v] = register_students(settings, 1)
    registry.promote(settings, v)  # as before exports existed: no export
    monkeypatch.setenv("TONEFLOW_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        assert registry.verified_export(settings, v) is None
        assert main(["models", "export"]) == 0
        assert "ONNX export stored" in capsys.readouterr().out
        assert registry.verified_export(settings, v) is not None
        from serving.cli import _predict_student

        chosen = _predict_student(get_settings(), "current", 1)
        assert isinstance(chosen, OrtStudent) and chosen.runtime == "onnx-fp32"
        assert main(["predict", "golden hour", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        torch_edit = MiniLMStudent.load(registry.model_path(settings, v)).predict(["golden hour"])[0]
        assert out["model"] == {"kind": "student", "name": "minilm", "version": v}
        assert out["edit"] == torch_edit.canonical_dict()  # predict runs the fp32 graph: PyTorch's numbers
    finally:
        get_settings.cache_clear()

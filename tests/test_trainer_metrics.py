"""The paper's metrics against values computed by hand (trainer issue, "Metrics")."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.edit import Edit
from trainer.metrics import cosine, harmonic, sample_score, score, score_subsets, sign_agreement

REFS = [
    {"adjust": {"contrast": 10, "temperature": 30}, "filter": {"name": "mono_Noir", "intensity": 50}},
    {"selective_adjust": {"red": {"saturation": 20}}},
    {"adjust": {"exposure": 10}},
    {},
]
PREDS = [
    # adjust: same direction, double magnitude → cosine 1; filter: wrong name
    {"adjust": {"contrast": 20, "temperature": 60}, "filter": {"name": "mono_Classic", "intensity": 40}},
    # selective exact; adjust used where the reference does not (FP)
    {"selective_adjust": {"red": {"saturation": 20}}, "adjust": {"contrast": 5}},
    # adjust orthogonal → cosine 0
    {"adjust": {"brightness": 10}},
    # filter used where nothing is (FP)
    {"filter": {"name": "mono_Noir", "intensity": 100}},
]

# By hand:
# adjust: ref {1,3}, pred {1,2,3}: TP 2, FP 1, FN 0 → P 2/3, R 1, F1 0.8; quality (1 + 0)/2 = 0.5;
#         final 2·0.8·0.5/1.3 = 0.615385; mae = ((10+30)/14 + (10+10)/14)/2 = 60/28
# selective: TP 1 → P R F1 1; quality 1; final 1
# filter: ref {1}, pred {1,4}: TP 1 FP 1 → P .5, R 1, F1 2/3; quality 0 (name differs); final 0
# overall = (0.615385 + 1 + 0)/3
EXPECTED = {
    "adjust": {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "quality": 0.5, "final": 0.8 / 1.3},
    "selective_adjust": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "quality": 1.0, "final": 1.0},
    "filter": {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "quality": 0.0, "final": 0.0},
    "overall": (0.8 / 1.3 + 1.0) / 3,
    "n": 4,
}


def _edits(raw: list[dict]) -> list[Edit]:
    return [Edit.model_validate(r) for r in raw]


def _close(actual: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, dict):
            _close(actual[key], value)
        else:
            assert actual[key] == pytest.approx(value, abs=1e-9), key


def test_hand_computed_scores() -> None:
    result = score(_edits(PREDS), _edits(REFS))
    _close(result.public(), EXPECTED)
    assert result.tools["adjust"].mae == pytest.approx(60 / 28)
    assert result.tools["filter"].mae == pytest.approx(10)
    assert result.filter_confusion == {"mono_Noir": {"mono_Classic": 1}}
    assert set(result.public()) == {"adjust", "selective_adjust", "filter", "overall", "n"}


def test_cosine_edge_cases() -> None:
    assert cosine([0, 0], [0, 0]) == 1.0
    assert cosine([0, 0], [0, 5]) == 0.0
    assert cosine([1, 0], [-1, 0]) == pytest.approx(-1.0)
    assert cosine([3, 4], [6, 8]) == pytest.approx(1.0)
    assert harmonic(0, 0) == 0.0 and harmonic(1, 0) == 0.0 and harmonic(0.5, 1) == pytest.approx(2 / 3)


def test_no_shared_usage_means_quality_zero_and_f1_zero() -> None:
    preds = _edits([{"adjust": {"contrast": 5}}, {}])
    refs = _edits([{}, {"adjust": {"contrast": 5}}])
    s = score(preds, refs)
    assert s.tools["adjust"].f1 == 0.0 and s.tools["adjust"].quality == 0.0 and s.tools["adjust"].final == 0.0
    # Tools nobody uses: TP = 0 → F1 = 0 by definition (the paper's per-tool score over all samples).
    assert s.tools["filter"].f1 == 0.0 and s.overall == 0.0


def test_zero_intensity_filter_counts_as_unused() -> None:
    # canonical form: a filter at intensity 0 renders like no filter, so it is not "used".
    s = score(_edits([{"filter": {"name": "mono_Noir", "intensity": 0}}]), _edits([{"filter": {"name": "mono_Noir"}}]))
    assert s.tools["filter"].recall == 0.0


def test_perfect_predictions_score_one() -> None:
    s = score(_edits(REFS[:3]), _edits(REFS[:3]))
    assert s.overall == pytest.approx(1.0) and all(t.mae == 0 for t in s.tools.values())


def test_subsets_use_exporter_counts() -> None:
    subsets = score_subsets(_edits(PREDS), _edits(REFS), exporters=[5, 3, 1, None])
    assert subsets["All"].n == 4 and subsets["r_3"].n == 2 and subsets["r_5"].n == 1
    # r_5 = sample 1 only: adjust perfect tool choice and cosine 1; filter name wrong; no selective.
    assert subsets["r_5"].tools["adjust"].final == pytest.approx(1.0)
    assert subsets["r_5"].overall == pytest.approx(1 / 3)


def test_sample_score() -> None:
    preds, refs = _edits(PREDS), _edits(REFS)
    assert sample_score(preds[2], refs[2]) == pytest.approx(0.0)
    assert sample_score(preds[0], refs[0]) == pytest.approx(0.5)
    assert sample_score(Edit(), Edit()) == 1.0


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_cli_matches_hand_computed(tmp_path: Path) -> None:
    refs = _write(tmp_path / "r.jsonl", [{"id": f"s{i}", "edit": e, "prompt": "ignored"} for i, e in enumerate(REFS)])
    # shuffled order and an extra prediction id: matching is by id, extras are ignored
    rows = [{"id": f"s{i}", "edit": e} for i, e in enumerate(PREDS)][::-1] + [{"id": "extra", "edit": {}}]
    preds = _write(tmp_path / "p.jsonl", rows)
    out = subprocess.run([sys.executable, "-m", "toneflow", "eval", "--predictions", str(preds),
                          "--references", str(refs), "--json"], capture_output=True, text=True, check=True)
    _close(json.loads(out.stdout), EXPECTED)


def test_eval_cli_missing_prediction_scores_as_empty(tmp_path: Path) -> None:
    refs = _write(tmp_path / "r.jsonl", [{"id": "a", "edit": REFS[2]}, {"id": "b", "edit": REFS[2]}])
    preds = _write(tmp_path / "p.jsonl", [{"id": "a", "edit": REFS[2]}])
    out = subprocess.run([sys.executable, "-m", "toneflow", "eval", "--predictions", str(preds),
                          "--references", str(refs), "--json"], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["n"] == 2 and got["adjust"]["recall"] == pytest.approx(0.5)
    assert "1 reference" in out.stderr and "no prediction" in out.stderr
    assert math.isclose(got["adjust"]["quality"], 1.0)


def test_sign_agreement_counts_clear_changes_made_the_same_way() -> None:
    ref = Edit.model_validate({"adjust": {"brightness": -30, "contrast": 20, "tint": 4},
                               "selective_adjust": {"blue": {"saturation": 40}}})
    # brightness right way at >= half, contrast the wrong way, blue saturation too weak (19 < 20);
    # tint 4 is below SIGN_MIN, so it is no decision either way
    pred = Edit.model_validate({"adjust": {"brightness": -15, "contrast": -20, "tint": -50},
                                "selective_adjust": {"blue": {"saturation": 19}}})
    assert sign_agreement([pred], [ref]) == pytest.approx(1 / 3)
    assert sign_agreement([ref], [ref]) == 1.0
    assert sign_agreement([Edit()], [ref]) == 0.0
    assert sign_agreement([pred], [Edit()]) == 1.0  # nothing asked clearly: nothing to get wrong


def test_weights_count_a_sample_as_often_as_its_weight() -> None:
    """A weight of 2 is the sample twice, equal weights are no weights: the same metric, reweighted
    (``trainer.evaluate.group_balanced``)."""
    preds, refs = [Edit.model_validate(p) for p in PREDS], [Edit.model_validate(r) for r in REFS]
    plain = score(preds, refs)
    assert score(preds, refs, [0.5] * len(refs)).overall == pytest.approx(plain.overall)
    doubled = score([preds[0], *preds], [refs[0], *refs])
    weighted = score(preds, refs, [2.0, 1.0, 1.0, 1.0])
    assert weighted.overall == pytest.approx(doubled.overall) and weighted.overall != pytest.approx(plain.overall)
    for tool in ("adjust", "selective_adjust", "filter"):
        assert weighted.tools[tool].f1 == pytest.approx(doubled.tools[tool].f1)
        assert weighted.tools[tool].quality == pytest.approx(doubled.tools[tool].quality)
    with pytest.raises(ValueError, match="weights for"):
        score(preds, refs, [1.0])

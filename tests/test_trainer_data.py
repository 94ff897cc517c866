"""Snapshots, splits, label policies, the warehouse source and augmentation (no model needed)."""

from __future__ import annotations

import json
import random
from datetime import UTC
from pathlib import Path

import pytest

from foundation.settings import Settings
from schemas.text import normalise_prompt
from trainer import snapshot
from trainer.augment import auto_augment, neighbour_intents, paraphrase, paraphrases
from trainer.data import make_example, read_examples
from trainer.labels import Candidate, apply_policy

WARM = json.dumps({"adjust": {"temperature": 30}}, separators=(",", ":"))
COOL = json.dumps({"adjust": {"temperature": -30}}, separators=(",", ":"))
NOIR = json.dumps({"filter": {"name": "mono_Noir", "intensity": 80}}, separators=(",", ":"))


def _cand(i: int, norm: str, edit: str, user: str | None = None, source: str = "teacher") -> Candidate:
    return Candidate(f"e{i}", norm, norm, edit, f"p{i}", user or f"u{i}", source)


def test_split_is_deterministic_and_stable_as_data_grows() -> None:
    prompts = [f"look number {i}" for i in range(2000)]
    first = {p: snapshot.split_of(p, 0.1, 0.1) for p in prompts}
    assert first == {p: snapshot.split_of(p, 0.1, 0.1) for p in reversed(prompts)}
    share = sum(s == "test" for s in first.values()) / len(prompts)
    assert 0.07 < share < 0.13
    # growing the data (or changing only the validation share) never moves a test intent
    assert all(snapshot.split_of(p, 0.1, 0.2) == "test" for p, s in first.items() if s == "test")


def test_export_rate_policy_picks_highest_rate_with_min_count() -> None:
    cands = ([_cand(i, "golden hour", WARM) for i in range(4)]          # 4 exports / 10 served = 0.4
             + [_cand(10 + i, "golden hour", COOL) for i in range(3)]   # 3 exports / 4 served = 0.75
             + [_cand(20, "golden hour", NOIR)])                        # 1/1 but served < min count
    served = {("golden hour", WARM): 10, ("golden hour", COOL): 4, ("golden hour", NOIR): 1}
    rows = apply_policy(cands, "export_rate", served=served, min_served=3)
    assert len(rows) == 1 and rows[0].edit == COOL and rows[0].exporters == 3
    # without serving counts (a plain file), the most exported edit wins
    assert apply_policy(cands, "export_rate")[0].edit == WARM


def test_exporters_count_distinct_users() -> None:
    cands = [_cand(i, "noir", NOIR, user="same-user") for i in range(5)] + [_cand(9, "noir", NOIR, user="other")]
    assert apply_policy(cands)[0].exporters == 2


def test_user_corrected_first_and_all_accepted() -> None:
    cands = [_cand(i, "moody", WARM) for i in range(5)] + [_cand(9, "moody", NOIR, source="user_corrected")]
    assert apply_policy(cands, "user_corrected_first")[0].edit == NOIR
    assert apply_policy(cands, "user_corrected_first")[0].label_source == "user_corrected"
    assert apply_policy(cands, "export_rate")[0].edit == WARM
    assert len(apply_policy(cands, "all_accepted")) == 6
    with pytest.raises(ValueError, match="unknown label policy"):
        apply_policy(cands, "best")  # type: ignore[arg-type]


def _rows(n: int = 300) -> list:
    return [make_example(f"look {i}", {"adjust": {"contrast": 1 + i % 50}}, exporters=i % 7) for i in range(n)]


def test_snapshot_is_immutable_content_hashed_and_splits_disjoint(settings: Settings) -> None:
    rows = _rows()
    snap = snapshot.create(settings, rows, policy="export_rate", source={"kind": "test"})
    again = snapshot.create(settings, list(reversed(rows)), policy="export_rate", source={"kind": "test"})
    assert snap.id == again.id and snapshot.list_ids(settings) == [snap.id]
    parts = {s: {r.prompt_norm for r in snap.rows(s)} for s in snapshot.SPLITS}
    assert sum(len(p) for p in parts.values()) == 300
    assert not (parts["train"] & parts["test"]) and not (parts["validation"] & parts["test"])
    m = snap.manifest
    assert m["policy"] == "export_rate" and m["files"]["test.parquet"]["rows"] == len(parts["test"])
    snapshot.verify(snap)
    other = snapshot.create(settings, rows, policy="all_accepted", source={"kind": "test"})
    assert other.id != snap.id  # the policy is part of the content


def test_pinned_benchmark_never_trained_on(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = snapshot.create(settings, _rows(), policy="export_rate", source={"kind": "test"})
    pinned = snapshot.pin(settings, snap.id)
    assert snapshot.read_pin(settings)["test_set"] == pinned["test_set"] == snap.test_set_id
    # a later snapshot with a bigger test share: pinned intents still never reach train/validation
    bigger = settings.model_copy(update={"test_fraction": 0.3})
    new = snapshot.create(bigger, _rows(400), policy="export_rate", source={"kind": "test"})
    pinned_norms = {r.prompt_norm for r in snap.rows("test")}
    trained = {r.prompt_norm for s in ("train", "validation") for r in new.rows(s)}
    assert not (pinned_norms & trained)
    test_id, rows = snapshot.benchmark_set(settings, new)
    assert test_id == snap.test_set_id and {r.prompt_norm for r in rows} == pinned_norms


def test_augmented_rows_only_in_train(settings: Settings) -> None:
    rows = _rows(100)
    held_out = [r for r in rows if snapshot.split_of(r.prompt_norm, 0.1, 0.1) != "train"]
    leaking = [make_example(r.prompt, r.edit, augmented=True, id=f"aug-{r.id}") for r in held_out]
    fresh = [make_example(f"brand new look {i}", WARM, augmented=True) for i in range(30)]
    snap = snapshot.create(settings, rows, policy="p", source={}, augmented=leaking + fresh)
    for split in ("validation", "test"):
        assert not any(r.augmented for r in snap.rows(split))
    train_aug = [r for r in snap.rows("train") if r.augmented]
    assert snap.manifest["augmented_dropped"] >= len(leaking)
    assert {r.prompt_norm for r in train_aug} <= {r.prompt_norm for r in fresh}


def test_paraphrases_keep_labels_and_stay_in_train(settings: Settings) -> None:
    rng = random.Random(0)
    assert {paraphrase("warm and moody", rng) for _ in range(30)} - {"warm and moody"}
    rows = [make_example(f"warm sunset {i}", WARM) for i in range(20)]
    made = paraphrases(rows, 3, settings)
    assert made and all(r.augmented and r.edit == WARM and r.origin for r in made)
    assert all(snapshot.split_of(r.prompt_norm, settings.test_fraction, settings.val_fraction) == "train" for r in made)
    assert len({r.prompt_norm for r in made}) == len(made)


def test_auto_augment_targets_small_slices_only(settings: Settings) -> None:
    big = [make_example(f"warm look {i}", WARM) for i in range(60)]
    small = [make_example(f"noir look {i}", NOIR) for i in range(6)]
    made = auto_augment(big + small, settings.model_copy(update={"augment_min_slice": 20}))
    assert made and all(r.edit == NOIR for r in made)  # the "warm" slice already has enough rows
    assert auto_augment(big + small, settings.model_copy(update={"augment_min_slice": 0})) == []


def test_neighbour_intents_reuse_a_word_of_the_mistake() -> None:
    out = neighbour_intents(["cool morning"], ["tone", "evening", "light"], 8, random.Random(1))
    assert len(out) == 8 and all("cool" in o or "morning" in o for o in out)


def test_snapshot_from_warehouse_views(settings: Settings, tmp_path: Path) -> None:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.sources import from_duckdb

    accepted = [  # edit = label; two projects exported WARM for "golden hour", one exported COOL
        {"event_id": "a1", "project_id": "p1", "user_id": "u1", "prompt": "Golden hour!", "prompt_norm": "golden hour",
         "edit": WARM, "label_source": "teacher"},
        {"event_id": "a2", "project_id": "p2", "user_id": "u2", "prompt": "golden hour", "prompt_norm": "golden hour",
         "edit": WARM, "label_source": "teacher"},
        {"event_id": "a3", "project_id": "p3", "user_id": "u3", "prompt": "golden hour", "prompt_norm": "golden hour",
         "edit": COOL, "label_source": "teacher"},
    ]
    served = ([{"prompt_norm": "golden hour", "served_edit": WARM}] * 8
              + [{"prompt_norm": "golden hour", "served_edit": '{"adjust": {"temperature": -30}}'}] * 3)
    pq.write_table(pa.Table.from_pylist(accepted), tmp_path / "accepted.parquet")
    pq.write_table(pa.Table.from_pylist(served), tmp_path / "prompts.parquet")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW accepted_examples AS SELECT * FROM '{tmp_path / 'accepted.parquet'}'")
    con.execute(f"CREATE VIEW prompts AS SELECT * FROM '{tmp_path / 'prompts.parquet'}'")
    cands, counts = from_duckdb(con)
    assert counts[("golden hour", COOL)] == 3  # a different JSON spelling of COOL counts as COOL
    rows = apply_policy(cands, "export_rate", served=counts, min_served=3)
    # WARM: 2 exports / 8 served = 0.25; COOL: 1 / 3 = 0.33 → COOL, the higher export rate
    assert [r.edit for r in rows] == [COOL] and rows[0].prompt == "golden hour"


def test_read_examples_jsonl_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": "Warm", "edit": {"adjust": {"temperature": 30}}, "exporters": 4},
            {"prompt": "failed", "edit": None}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pq.write_table(pa.Table.from_pylist([{"prompt": "Warm", "edit": WARM}]), tmp_path / "a.parquet")
    a, b = read_examples(tmp_path / "a.jsonl"), read_examples(tmp_path / "a.parquet")
    assert len(a) == 1 and a[0].edit == WARM and a[0].exporters == 4 and a[0].prompt_norm == normalise_prompt("Warm")
    assert b[0].edit == WARM


class _StubStudent:
    """Predicts {} for everything, so every validation row with a label is a mistake."""

    def __init__(self) -> None:
        self.fitted: list = []

    def predict(self, prompts):  # noqa: ANN001, ANN201
        from schemas.edit import Edit

        return [Edit() for _ in prompts]

    def fit(self, train, val):  # noqa: ANN001, ANN201
        from trainer.students.base import FitReport

        self.fitted = list(train)
        return FitReport()


def test_augment_round_adds_teacher_labelled_neighbours_only_in_train(settings: Settings) -> None:
    pytest.importorskip("teacher.offline")
    from trainer.augment import augment_round

    train = [make_example(p, WARM) for p in ("golden hour", "warm evening", "sunset glow", "cool tone")]
    val = [make_example("cool morning", COOL), make_example("film noir", NOIR)]
    fresh = _StubStudent()
    student, bigger, report = augment_round(_StubStudent(), train, val, settings, make_student=lambda: fresh,
                                            per_prompt=6, paraphrase_per_row=1)
    added = bigger[len(train):]
    assert student is fresh and fresh.fitted == bigger and "augment_round" in report.notes[0]
    teacher_rows = [r for r in added if r.label_source == "teacher_augment"]
    assert teacher_rows and all(r.augmented for r in added)
    held_out = {r.prompt_norm for r in val}
    for r in added:
        assert r.prompt_norm not in held_out
        assert snapshot.split_of(r.prompt_norm, settings.test_fraction, settings.val_fraction) == "train"


def test_train_config_yaml_merge(tmp_path: Path) -> None:
    from trainer.config import TrainConfig
    from trainer.exceptions import TrainerError

    path = tmp_path / "train.yaml"
    path.write_text("epochs: 3\nlora-r: 4\nstudent: seq2seq\n")
    cfg = TrainConfig.from_sources(path, epochs=5, lr=None)
    assert (cfg.epochs, cfg.lora_r, cfg.student, cfg.lr) == (5, 4, "seq2seq", TrainConfig().lr)
    path.write_text("epoch: 3\n")
    with pytest.raises(TrainerError, match="unknown train option"):
        TrainConfig.from_sources(path)


def test_snapshot_from_the_real_warehouse(settings: Settings) -> None:
    pytest.importorskip("warehouse.catalog")
    from datetime import datetime

    from trainer.config import TrainConfig
    from trainer.train import resolve_snapshot
    from warehouse.tables import SCHEMAS
    from warehouse.writer import write_rows

    def full(table: str, **values: object) -> dict[str, object]:  # columns this test does not set are null
        return {**{f.name: None for f in SCHEMAS[table]}, **values}

    ts = datetime(2026, 11, 1, tzinfo=UTC)
    accepted = [full("accepted_examples", **{"event_id": f"a{i}", "project_id": f"p{i}", "user_id": f"u{i % 3}",
                                             "prompt": f"look {i % 40}",
                 "prompt_norm": f"look {i % 40}", "edit": WARM if i % 40 < 20 else NOIR, "label_source": "teacher",
                 "ts": ts, "prompt_ts": ts, "export_ts": ts}) for i in range(120)]
    prompts = [full("prompts", event_id=f"q{i}", project_id=f"p{i}", user_id="u", ts=ts, prompt=f"look {i % 40}",
                    prompt_norm=f"look {i % 40}", served_edit=None) for i in range(200)]
    write_rows(settings, "accepted_examples", accepted, key="trainer-test")
    write_rows(settings, "prompts", prompts, key="trainer-test")
    snap = resolve_snapshot(settings, TrainConfig(auto_augment=False))
    assert snap.manifest["source"] == {"kind": "warehouse", "accepted": 120}
    rows = [r for s in snapshot.SPLITS for r in snap.rows(s)]
    assert len(rows) == 40 and all(r.exporters == 3 for r in rows)  # 3 exports per intent, 3 distinct users


def test_warehouse_source_caps_student_served_examples(tmp_path: Path) -> None:
    """The feedback-loop guard: at most TONEFLOW_STUDENT_SHARE_CAP of the rows were served by a student."""
    from datetime import datetime

    from trainer.sources import from_warehouse
    from warehouse.tables import SCHEMAS
    from warehouse.writer import write_batch

    settings = Settings(data_dir=tmp_path / "data", student_share_cap=0.25)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    rows = [{**{f.name: None for f in SCHEMAS["accepted_examples"]}, "event_id": f"e{i}", "project_id": f"p{i}",
             "user_id": f"u{i}", "prompt": f"warm look {i}", "prompt_norm": f"warm look {i}", "edit": WARM,
             "label_source": "teacher", "served_kind": "student" if i % 2 else "teacher",
             "served_model": "minilm" if i % 2 else "offline",
             "ts": now, "ingested_at": now} for i in range(40)]
    write_batch(settings, "accepted_examples", rows, topic="toneflow.accepted", partition=0, first_offset=0,
                last_offset=39)
    cands, _ = from_warehouse(settings)
    students = [c for c in cands if int(c.event_id[1:]) % 2]
    assert len(cands) - len(students) == 20  # every teacher-served example stays
    assert len(students) == 6  # 0.25 share: s <= 0.25 * 20 / 0.75 = 6.67 → 6

"""Real Parquet files, real DuckDB: idempotent writes, de-duplicated views, the A/B and spend views."""

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from foundation.settings import Settings
from schemas import validate_edit
from schemas.events import ExportEvent, LabelEvent, PromptEvent, ServedBy, TeacherRef
from warehouse import tables
from warehouse.catalog import connect, refresh
from warehouse.layout import data_files, table_dir
from warehouse.maintenance import compact, stats
from warehouse.writer import write_batch, write_rows

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def wh(tmp_path):
    return Settings(data_dir=tmp_path / "data")


def _prompt(i, variant="A"):
    return PromptEvent(event_id=f"e{i}", project_id=f"p{i}", user_id=f"u{i % 7}", ts=T0 + timedelta(minutes=i),
                       prompt="Golden Hour!", served_by=ServedBy(kind="teacher", model="offline", version="v1", variant=variant),
                       served_edit=validate_edit({"adjust": {"temperature": 20}}))


def _write_prompts(wh, events, first_offset=0, partition=0):
    rows = [tables.prompt_row(e, tables.Source("toneflow.prompts", partition, first_offset + k))
            for k, e in enumerate(events)]
    return write_batch(wh, "prompts", rows, topic="toneflow.prompts", partition=partition,
                       first_offset=first_offset, last_offset=first_offset + len(rows) - 1)


def test_a_re_created_log_does_not_overwrite_the_old_logs_batches(wh):
    # A broker that lost its log hands out offsets from 0 again: the new records' batch has the old
    # batch's offsets, and must land beside it, not over it (docs/reliability.md §9).
    [old] = _write_prompts(wh, [_prompt(i) for i in range(10)])
    [new] = _write_prompts(wh, [_prompt(i) for i in range(100, 110)])
    assert old != new and old.exists() and new.exists()
    assert connect(wh).execute("SELECT count(DISTINCT event_id) FROM prompts").fetchone()[0] == 20


def test_empty_warehouse_has_typed_empty_views(wh):
    con = connect(wh)
    for view in ("prompts", "exports", "labels", "accepted_examples", "dlq", "training_runs", "model_evals",
                 "rollout_decisions",
                 "ab_completion", "ab_completion_total", "teacher_spend"):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] == 0


def test_rewriting_a_batch_replaces_it_and_views_dedupe_across_batches(wh):
    events = [_prompt(i) for i in range(10)]
    [path] = _write_prompts(wh, events)
    assert re.fullmatch(r"toneflow\.prompts-p0000-0000000000000000000-0000000000000000009-[0-9a-f]{16}\.parquet",
                        path.name), path.name
    assert "date=2026-11-25" in str(path)
    _write_prompts(wh, events)  # the same batch again (a replay): same file name, replaced
    assert len(data_files(wh, "prompts")) == 1
    _write_prompts(wh, events[5:], first_offset=5)  # replay cut differently: physical duplicates
    con = connect(wh)
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM prompts").fetchone() == (10, 10)
    assert con.execute("SELECT DISTINCT prompt_norm FROM prompts").fetchall() == [("golden hour",)]
    prompts = stats(wh)["tables"]["prompts"]
    assert (prompts["rows"], prompts["physical_rows"], prompts["files"]) == (10, 15, 2)


def test_temp_files_are_invisible(wh):
    _write_prompts(wh, [_prompt(1)])
    part = next(table_dir(wh, "prompts").glob("date=*"))
    (part / ".tmp-partial-abc.parquet").write_bytes(b"PAR1 torn write")
    assert connect(wh).execute("SELECT count(*) FROM prompts").fetchone()[0] == 1


def test_ab_completion_with_wilson_interval(wh):
    _write_prompts(wh, [_prompt(i, "A") for i in range(10)] + [_prompt(i, "B") for i in range(10, 30)])
    exported = [ExportEvent(event_id=f"x{i}", project_id=f"p{i}", user_id="u", ts=T0 + timedelta(hours=1))
                for i in [*range(0, 4), *range(10, 25)]]
    rows = [tables.export_row(e, tables.Source("toneflow.exports", 0, k)) for k, e in enumerate(exported)]
    write_batch(wh, "exports", rows, topic="toneflow.exports", partition=0, first_offset=0, last_offset=len(rows) - 1)
    con = connect(wh)
    got = con.execute("SELECT variant, projects_started, projects_exported, project_completion_rate, ci95_low, "
                      "ci95_high FROM ab_completion_total ORDER BY variant").fetchall()
    assert [g[:3] for g in got] == [("A", 10, 4), ("B", 20, 15)]
    # Wilson 95% for 4/10: [0.1682, 0.6873]; for 15/20: [0.5313, 0.8881] (hand-computed)
    assert got[0][3] == pytest.approx(0.4) and got[0][4] == pytest.approx(0.1682, abs=1e-3)
    assert got[0][5] == pytest.approx(0.6873, abs=1e-3)
    assert got[1][4] == pytest.approx(0.5313, abs=1e-3) and got[1][5] == pytest.approx(0.8881, abs=1e-3)
    assert con.execute("SELECT count(*) FROM ab_completion").fetchone()[0] == 2  # one day, two variants


def test_teacher_spend_and_cost_per_accepted(wh):
    labels = [LabelEvent(event_id=f"e{i}", project_id=f"p{i}", user_id="u", prompt="moody", prompt_ts=T0, ts=T0,
                         teacher=TeacherRef(model="openai", version="gpt-x"), edit=validate_edit({}),
                         latency_ms=5, prompt_tokens=100, completion_tokens=50, cost=0.002, cached=i >= 3)
              for i in range(4)]
    rows = [tables.label_row(e, tables.Source("toneflow.labels", 0, k)) for k, e in enumerate(labels)]
    write_batch(wh, "labels", rows, topic="toneflow.labels", partition=0, first_offset=0, last_offset=3)
    accepted = [{**{f.name: None for f in tables.SCHEMAS["accepted_examples"]}, "event_id": "e0",
                 "teacher_version": "gpt-x", "ts": T0, "ingested_at": T0}]
    write_batch(wh, "accepted_examples", accepted, topic="toneflow.accepted", partition=0, first_offset=0,
                last_offset=0)
    row = connect(wh).execute("SELECT calls, cache_hits, tokens, cost, accepted, cost_per_accepted "
                              "FROM teacher_spend").fetchone()
    assert row[:3] == (3, 1, 600) and row[3] == pytest.approx(0.008) and row[4] == 1
    assert row[5] == pytest.approx(0.008)


def test_compaction_keeps_rows_and_removes_duplicates(wh):
    events = [_prompt(i) for i in range(20)]
    for start in range(0, 20, 5):
        _write_prompts(wh, events[start:start + 5], first_offset=start)
    _write_prompts(wh, events[:10], first_offset=0)  # a replay cut differently: the same offsets again
    _write_prompts(wh, events[:5], first_offset=100)  # the same events sent again: new offsets
    assert len(data_files(wh, "prompts")) == 6
    done = compact(wh)
    # Replays of an offset go; records at other offsets stay (the views pick one, the audit counts all).
    assert done == [{"table": "prompts", "partition": "date=2026-11-25", "files_in": 6, "rows": 25}]
    assert len(data_files(wh, "prompts")) == 1
    assert connect(wh).execute("SELECT count(*) FROM prompts").fetchone()[0] == 20


def test_trainer_tables_and_refresh(wh):
    write_rows(wh, "training_runs", [{"run_id": "r1", "ts": T0, "overall": 0.9}], key="r1")
    write_rows(wh, "training_runs", [{"run_id": "r1", "ts": T0, "overall": 0.9}], key="r1")  # idempotent per key
    assert connect(wh).execute("SELECT run_id, overall FROM training_runs").fetchall() == [("r1", 0.9)]
    import duckdb

    path = refresh(wh)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM training_runs").fetchone()[0] == 1


def test_sql_cli_formats(wh):
    _write_prompts(wh, [_prompt(i) for i in range(3)])
    env = {"TONEFLOW_DATA_DIR": str(wh.data_dir), "PATH": "/usr/bin:/bin"}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "toneflow", *args], capture_output=True, text=True, env=env,
                              timeout=60)

    table = run("sql", "SELECT event_id FROM prompts ORDER BY 1")
    assert table.returncode == 0 and "e0" in table.stdout and "(3 rows)" in table.stdout
    as_json = run("sql", "SELECT count(*) AS n FROM prompts", "--format", "json")
    assert json.loads(as_json.stdout) == {"n": 3}
    bad = run("sql", "SELECT * FROM no_such_view")
    assert bad.returncode == 1 and bad.stderr.startswith("error: query failed")
    assert "Traceback" not in bad.stderr


def test_stale_temp_files_are_cleaned_fresh_ones_kept(wh):
    import os
    import time

    from warehouse.layout import warehouse_root
    from warehouse.writer import remove_stale_temp_files

    _write_prompts(wh, [_prompt(1)])
    part = next(table_dir(wh, "prompts").glob("date=*"))
    stale, fresh = part / ".tmp-dead-writer.parquet", part / ".tmp-live-writer.parquet"
    stale.write_bytes(b"torn")
    fresh.write_bytes(b"in progress")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert remove_stale_temp_files(warehouse_root(wh)) == 1
    assert not stale.exists() and fresh.exists() and len(data_files(wh, "prompts")) == 1


def _leaf_fields(model, prefix=""):
    """Every stored leaf of an event model, walked independently of warehouse/tables.py."""
    from pydantic import BaseModel

    from schemas import Edit

    out = []
    for name, info in model.model_fields.items():
        if name == "schema_version":
            continue
        kinds = [a for a in (getattr(info.annotation, "__args__", None) or (info.annotation,)) if a is not type(None)]
        nested = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel) and k is not Edit]
        out += _leaf_fields(nested[0], prefix + name + ".") if nested else [prefix + name]
    return out


def test_every_event_field_is_a_column_and_nothing_else():
    """The Parquet row schemas come from the event contracts: a field added to an event appears
    as a column (and one removed disappears), with only the lineage and computed columns besides."""
    lineage = {"src_topic", "src_partition", "src_offset", "ingested_at"}
    for table, spec in tables.SPECS.items():
        columns = set(tables.SCHEMAS[table].names) - lineage - {name for name, _, _ in spec.derived}
        leaves = _leaf_fields(spec.model)
        assert len(columns) == len(leaves), (table, sorted(columns), leaves)
        for leaf in leaves:  # each nested leaf lands under its documented prefix
            head, _, tail = leaf.rpartition(".")
            assert (spec.prefixes[head] + tail if head else tail) in columns, (table, leaf)


def test_a_new_event_field_becomes_a_column(monkeypatch):
    from pydantic import Field

    from schemas.events import PromptEvent

    class PromptEventV2(PromptEvent):
        device: str | None = Field(None)

    spec = tables.TableSpec(PromptEventV2, tables.SPECS["prompts"].prefixes, tables.SPECS["prompts"].derived)
    assert "device" in tables._schema(spec).names
    assert "device" not in tables.SCHEMAS["prompts"].names


def test_rows_have_exactly_the_table_columns_or_the_write_fails(tmp_path):
    row = tables.prompt_row(_prompt(1), tables.Source("toneflow.prompts", 0, 1))
    assert set(row) == set(tables.SCHEMAS["prompts"].names)
    assert row["served_kind"] == "teacher" and row["served_model"] == "offline"
    settings = Settings(data_dir=tmp_path)
    partial = {k: v for k, v in row.items() if k != "served_kind"}
    with pytest.raises(ValueError, match=r"missing \['served_kind'\]"):
        write_batch(settings, "prompts", [partial], topic="toneflow.prompts", partition=0, first_offset=1, last_offset=1)

"""``toneflow sql`` reads the warehouse and nothing else: it cannot write into it or read other files."""

from __future__ import annotations

import pytest

from foundation.settings import get_settings
from schemas.events import TOPIC_PROMPTS, PromptEvent
from tests.test_warehouse import T0
from toneflow.cli import main
from warehouse import tables
from warehouse.catalog import connect
from warehouse.layout import data_files
from warehouse.writer import write_batch


@pytest.fixture
def wh(settings):
    rows = [tables.prompt_row(PromptEvent(event_id=f"e{i}", project_id="p", user_id="u", ts=T0, prompt="warm"),
                              tables.Source(TOPIC_PROMPTS, 0, i)) for i in range(3)]
    write_batch(settings, "prompts", rows, topic=TOPIC_PROMPTS, partition=0, first_offset=0, last_offset=2)
    return settings


def _count(settings) -> int:
    return connect(settings).execute("SELECT count(*) FROM prompts").fetchall()[0][0]


def test_reading_the_views_still_works(wh, capsys):
    assert main(["sql", "SELECT count(*) AS n FROM prompts", "--format", "json"]) == 0
    assert capsys.readouterr().out.strip() == '{"n": 3}'
    assert main(["sql", "DESCRIBE prompts"]) == 0


def test_copy_into_a_warehouse_file_is_refused_and_the_file_is_unchanged(wh, capsys):
    [target] = data_files(wh, "prompts")
    before = target.read_bytes()
    code = main(["sql", f"COPY (SELECT * FROM prompts LIMIT 1) TO '{target}' (FORMAT parquet)"])
    assert code == 1 and "only reads the warehouse" in capsys.readouterr().err
    assert target.read_bytes() == before and _count(wh) == 3
    # hidden behind a first, harmless statement
    assert main(["sql", f"SELECT 1; COPY (SELECT 1) TO '{target}'"]) == 1
    assert target.read_bytes() == before


@pytest.mark.parametrize("query", [
    "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "ATTACH '/tmp/toneflow-elsewhere.duckdb' AS other",
    "SET enable_external_access = true",
    "CREATE TABLE prompts_copy AS SELECT * FROM prompts",
    "INSTALL httpfs",
])
def test_other_files_and_changes_are_refused(wh, capsys, query):
    assert main(["sql", query]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "root:" not in err


def test_output_inside_the_data_dir_is_refused(wh, tmp_path, capsys):
    [target] = data_files(wh, "prompts")
    before = target.read_bytes()
    assert main(["sql", "SELECT 1 AS a", "--format", "parquet", "--output", str(target)]) == 1
    assert "inside the data directory" in capsys.readouterr().err and target.read_bytes() == before
    elsewhere = tmp_path / "out.parquet"
    assert main(["sql", "SELECT 1 AS a", "--format", "parquet", "--output", str(elsewhere)]) == 0
    assert elsewhere.exists() and get_settings().data_path not in elsewhere.parents

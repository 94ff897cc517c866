"""DuckDB over the Parquet files: ``connect`` for readers, ``refresh`` for the catalogue file.

Readers get an in-memory connection whose views read the Parquet files at query time, so they
never lock anything a writer needs (docs/reliability.md §6). ``refresh`` writes the same views into
``<data_dir>/warehouse.duckdb`` for tools that want a database file; it opens that file only
briefly and says who holds it when it is locked.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from foundation.errors import ToneflowError
from foundation.settings import Settings
from warehouse.layout import data_files, glob_pattern, warehouse_root
from warehouse.tables import SCHEMAS
from warehouse.views import CONTENT_COLUMNS, DERIVED_VIEWS, conflicting_duplicates_sql, stream_view_sql

CATALOG_FILE = "warehouse.duckdb"
# Written by the trainer; their columns are the trainer's, so the views take whatever is there.
FREE_TABLES: dict[str, str] = {
    "training_runs": "run_id VARCHAR, version VARCHAR, ts TIMESTAMPTZ",
    "model_evals": "eval_id VARCHAR, version VARCHAR, subset VARCHAR, overall DOUBLE, ts TIMESTAMPTZ",
    # written by serving/rollout.py, one row per online-gate decision
    "rollout_decisions": "decision_id VARCHAR, verdict VARCHAR, reason VARCHAR, ts TIMESTAMPTZ",
    # written by the console's blind review (warehouse/reviews.py), one row per rating
    "reviews": "review_id VARCHAR, reviewer VARCHAR, version VARCHAR, item_id VARCHAR, prompt VARCHAR, "
               "student_relevant BOOLEAN, teacher_relevant BOOLEAN, mimics BOOLEAN, ts TIMESTAMPTZ",
}


class WarehouseLocked(ToneflowError):
    """The catalogue file is held by another process."""


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def source_sql(settings: Settings, table: str) -> str:
    """Every physical row of a stream table: its Parquet files, or an empty typed SELECT before the first."""
    if not data_files(settings, table):
        cols = ", ".join(f"CAST(NULL AS {_duck_type(f.type)}) AS {f.name}" for f in SCHEMAS[table])
        return f"(SELECT {cols} WHERE false)"
    return f"read_parquet({_quote(glob_pattern(settings, table))}, union_by_name = true)"


def view_sql(settings: Settings, table: str) -> str:
    """The SELECT behind one table view (empty but typed when the table has no files yet)."""
    if table in SCHEMAS:
        return stream_view_sql(table, source_sql(settings, table))
    if not data_files(settings, table):
        cols = ", ".join(f"CAST(NULL AS {c.split()[1]}) AS {c.split()[0]}" for c in FREE_TABLES[table].split(", "))
        return f"SELECT {cols} WHERE false"
    return f"SELECT * FROM read_parquet({_quote(glob_pattern(settings, table))}, union_by_name = true)"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    return "VARCHAR"


def create_views(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    con.execute("SET TimeZone = 'UTC'")
    for table in (*SCHEMAS, *FREE_TABLES):
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {view_sql(settings, table)}")
    # SCHEMAS lists prompts and exports before labels and accepted_examples, whose views join them.
    for name, sql in DERIVED_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
    sources = {table: source_sql(settings, table) for table in CONTENT_COLUMNS}
    con.execute(f"CREATE OR REPLACE VIEW conflicting_duplicates AS {conflicting_duplicates_sql(sources)}")


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every warehouse view. Cheap; reconnect to see new tables."""
    con = duckdb.connect(":memory:")
    create_views(con, settings)
    return con


class ReadOnlyQuery(ToneflowError):
    """A statement that would change something, sent where only reading is allowed."""


def connect_read_only(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Like ``connect``, but the connection can read only the warehouse's files and change nothing.

    After the views are made, DuckDB may open files only under the warehouse directory (no
    ``read_csv('/etc/passwd')``, no ATTACH, no extension installs), and the settings are locked so no
    statement can lift that. Writes *inside* the warehouse directory (``COPY ... TO``) are still
    possible for DuckDB, so ``check_read_only`` refuses every statement that is not a SELECT.
    """
    con = connect(settings)
    root = str(warehouse_root(settings)).rstrip("/") + "/"
    con.execute("SET allowed_directories = $dirs", {"dirs": [root]})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Raise ReadOnlyQuery unless every statement of ``query`` is a SELECT (DESCRIBE, SHOW, FROM ... are)."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as err:
        msg = f"query failed: {str(err).splitlines()[0]}"
        raise ReadOnlyQuery(msg) from None
    for statement in statements:
        if statement.type != duckdb.StatementType.SELECT:
            kind = str(statement.type).rsplit(".", 1)[-1]
            msg = (f"`toneflow sql` only reads the warehouse: a {kind} statement is not allowed; "
                   "use SELECT (and --output FILE to save a result)")
            raise ReadOnlyQuery(msg)


def catalog_path(settings: Settings) -> Path:
    return settings.data_path / CATALOG_FILE


def refresh(settings: Settings) -> Path:
    """(Re)write the views into the catalogue file for external tools (DBeaver, the duckdb CLI)."""
    path = catalog_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as err:
        msg = f"the warehouse catalogue {path} is locked by another process ({err}); close it and retry"
        raise WarehouseLocked(msg) from None
    try:
        create_views(con, settings)
    finally:
        con.close()
    return path

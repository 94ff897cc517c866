"""Warehouse upkeep: statistics and compaction of small files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from foundation.settings import Settings
from warehouse.catalog import FREE_TABLES, connect
from warehouse.layout import data_files, table_dir
from warehouse.tables import SCHEMAS
from warehouse.writer import write_table

COMPACT_PREFIX = "compacted-"
LINEAGE = ("src_topic", "src_partition", "src_offset")  # one record on the log


def stats(settings: Settings) -> dict[str, Any]:
    """Rows (after de-duplication), physical rows, files and freshness per table; DLQ by reason."""
    con = connect(settings)
    tables: dict[str, Any] = {}
    now = datetime.now(UTC)
    for table in (*SCHEMAS, *FREE_TABLES):
        files = data_files(settings, table)
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]  # count(*) always has a row
        physical = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        newest = max((f.stat().st_mtime for f in files), default=None)
        tables[table] = {
            "rows": rows, "physical_rows": physical, "files": len(files),
            "freshness_s": None if newest is None else round(now.timestamp() - newest, 1),
        }
    dlq = dict(con.execute("SELECT error_kind, count(*) FROM dlq GROUP BY 1 ORDER BY 2 DESC").fetchall())
    return {"tables": tables, "dlq_by_reason": dlq}


def compact(settings: Settings, *, min_files: int = 2) -> list[dict[str, Any]]:
    """Merge each date partition's files into one, dropping rows that replay the same log offset.

    Only replays of one record (same topic, partition, offset) are dropped: two records with the
    same event id are both kept, because the views decide which one counts (warehouse/views.py)
    and the audit needs every offset (warehouse/audit.py).

    Crash-safe: the merged file is written atomically before the inputs are deleted; a crash in
    between leaves duplicate rows across files, which the views remove by key.
    """
    done = []
    for table in (*SCHEMAS, *FREE_TABLES):
        root = table_dir(settings, table)
        for part in sorted(p for p in root.glob("date=*") if p.is_dir()):
            files = sorted(f for f in part.glob("*.parquet") if not f.name.startswith("."))
            if len(files) < min_files:
                continue
            merged = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
            if set(LINEAGE) <= set(merged.column_names):
                merged = _dedup(merged, LINEAGE)
            digest = hashlib.sha256("\n".join(f.name for f in files).encode()).hexdigest()[:16]
            out = write_table(merged, part / f"{COMPACT_PREFIX}{digest}.parquet")
            for f in files:
                if f != out:
                    f.unlink(missing_ok=True)
            done.append({"table": table, "partition": part.name, "files_in": len(files), "rows": merged.num_rows})
    return done


def _dedup(table: pa.Table, keys: tuple[str, ...]) -> pa.Table:
    seen: set[Any] = set()
    keep = []
    for i, value in enumerate(zip(*(table.column(k).to_pylist() for k in keys))):
        if value not in seen:
            seen.add(value)
            keep.append(i)
    return table.take(keep)

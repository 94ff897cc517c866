"""Where each table's Parquet files live, and how they are named.

    <data_dir>/warehouse/<table>/date=YYYY-MM-DD/<name>.parquet

Stream batches are named after their source: ``<topic>-p<partition>-<first>-<last>-<fingerprint>``
with zero-padded offsets, so re-writing the same batch after a crash replaces the file instead of
adding a duplicate. The fingerprint (a hash of the batch's first and last rows, ``writer.py``) keeps
a *re-created* log apart: a broker that lost its log (the embedded one on restart, a deleted and
re-created topic) hands out offsets from 0 again, and without it the new records' batches would
replace the old records' files. A batch that spans partitions (the worker lands one file per table
and batch, ``streams/sink.py``) is named after its lowest partition's range, with every partition's
range in the fingerprint (``writer.column_files``). Other writers (the trainer) name files by a
unique key. Temporary files start with ``.tmp-`` and are ignored by every reader.
"""

from __future__ import annotations

import re
from pathlib import Path

from foundation.settings import Settings

WAREHOUSE_DIR = "warehouse"
TMP_PREFIX = ".tmp-"
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def warehouse_root(settings: Settings) -> Path:
    return settings.data_path / WAREHOUSE_DIR


def table_dir(settings: Settings, table: str) -> Path:
    return warehouse_root(settings) / table


def partition_dir(settings: Settings, table: str, date: str) -> Path:
    return table_dir(settings, table) / f"date={date}"


def batch_name(topic: str, partition: int, first_offset: int, last_offset: int, fingerprint: str) -> str:
    return f"{safe(topic)}-p{partition:04d}-{first_offset:019d}-{last_offset:019d}-{safe(fingerprint)}.parquet"


def key_name(key: str) -> str:
    return f"{safe(key)}.parquet"


def safe(text: str) -> str:
    return _SAFE.sub("_", text)[:180]


def glob_pattern(settings: Settings, table: str) -> str:
    """The DuckDB glob for a table's files (temp files start with '.', which the glob skips)."""
    return str(table_dir(settings, table) / "date=*" / "[!.]*.parquet")


def data_files(settings: Settings, table: str) -> list[Path]:
    root = table_dir(settings, table)
    if not root.exists():
        return []
    return sorted(p for p in root.glob("date=*/*.parquet") if not p.name.startswith(TMP_PREFIX))

"""One DuckDB connection per console process, its views re-created only when tables appear.

``warehouse.catalog.connect`` binds every view on creation (reading Parquet footers), which costs
more than a page's queries. The views read their files at query time, so new files of a table
are seen anyway; a view must be re-created only when a table gets its first file (its empty,
typed stand-in becomes a read_parquet) or loses its last. Each request gets its own cursor:
DuckDB connections are not shared between threads, cursors are.
"""

from __future__ import annotations

import threading
from typing import Any

from foundation.settings import Settings


class Store:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._con: Any = None
        self._shape: tuple[bool, ...] = ()
        self._lock = threading.Lock()

    def _current_shape(self) -> tuple[bool, ...]:
        from warehouse.catalog import FREE_TABLES
        from warehouse.layout import data_files
        from warehouse.tables import SCHEMAS

        return tuple(bool(data_files(self.settings, t)) for t in (*SCHEMAS, *FREE_TABLES))

    def cursor(self) -> Any:
        from warehouse.catalog import connect, create_views

        shape = self._current_shape()
        with self._lock:
            if self._con is None:
                self._con = connect(self.settings)
                # Parquet footers cached across queries (keyed by file and mtime): every view is
                # re-bound on each query, and the footers are most of a small query's cost.
                self._con.execute("SET enable_object_cache = true")
            elif shape != self._shape:
                create_views(self._con, self.settings)
            self._shape = shape
            return self._con.cursor()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

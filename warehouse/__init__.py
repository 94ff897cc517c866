"""The warehouse: Parquet files as the source of truth, DuckDB views over them for everyone.

Writers (the stream sink, the trainer) only ever write Parquet files atomically; nothing holds a
database lock while writing. Readers open an in-memory DuckDB connection (``catalog.connect``)
with views over the files, so a reader never blocks a writer. ``toneflow warehouse refresh`` also
writes the same views into ``<data_dir>/warehouse.duckdb`` for tools that want a database file.
"""

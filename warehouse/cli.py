"""``toneflow sql`` and ``toneflow warehouse stats|compact|refresh``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from foundation.cli import add_command
from foundation.errors import ToneflowError
from foundation.settings import Settings, get_settings

VIEWS_HELP = ("views: prompts, exports, labels, accepted_examples, dlq, training_runs, model_evals, rollout_decisions,\n"
              "reviews, ab_completion, ab_completion_total, teacher_spend, conflicting_duplicates")


def register(sub: argparse._SubParsersAction) -> None:
    sql = add_command(sub, "sql", "run a SQL query on the warehouse (DuckDB)",
                      "Run one SQL statement against the warehouse views and print the result.\n" + VIEWS_HELP +
                      "\nexample: toneflow sql \"SELECT variant, project_completion_rate FROM ab_completion_total\"")
    sql.add_argument("query", help="the SQL statement")
    sql.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    sql.add_argument("--output", "-o", help="write to this file (required for parquet)")
    sql.add_argument("--limit", type=int, default=200, help="max rows shown in table format (0 = all)")
    sql.set_defaults(func=_sql)

    wh = add_command(sub, "warehouse", "inspect and maintain the Parquet warehouse")
    wsub = wh.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = add_command(wsub, "stats", "row counts, files, freshness and DLQ counts per table")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=_stats)
    compact = add_command(wsub, "compact", "merge small files of each date partition into one")
    compact.add_argument("--min-files", type=int, default=2, help="compact partitions with at least this many files")
    compact.set_defaults(func=_compact)
    audit = add_command(wsub, "audit", "check every record on the sunk topics is a row or a DLQ row",
                        "For every topic and partition: records on the broker (low..high watermark) = rows in its\n"
                        "table + records only in the DLQ. Lists the missing offsets; exit code 1 when any are\n"
                        "missing. Run it when the worker has caught up: records it has not consumed yet count as\n"
                        "missing.")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=_audit)
    refresh = add_command(wsub, "refresh", "write the views into <data_dir>/warehouse.duckdb for external tools")
    refresh.set_defaults(func=_refresh)


def format_table(columns: list[str], rows: list[tuple[Any, ...]], limit: int = 0) -> str:
    shown = rows if not limit else rows[:limit]
    cells = [[_cell(v) for v in row] for row in shown]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    if limit and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more rows (use --limit 0 or --format csv)")
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _sql(args: argparse.Namespace) -> int:
    import duckdb

    from warehouse.catalog import check_read_only, connect_read_only

    settings = get_settings()
    if args.output:
        _refuse_warehouse_path(settings, args.output)
    con = connect_read_only(settings)
    check_read_only(con, args.query)
    try:
        rel = con.sql(args.query)
    except duckdb.Error as err:
        msg = f"query failed: {str(err).splitlines()[0]}"
        raise ToneflowError(msg) from None
    if rel is None:
        print("ok")
        return 0
    if args.format == "parquet":
        if not args.output:
            msg = "--format parquet needs --output FILE"
            raise ToneflowError(msg)
        import pyarrow.parquet as pq

        pq.write_table(rel.to_arrow_table(), args.output)
        print(f"wrote {args.output}")
        return 0
    columns, rows = rel.columns, rel.fetchall()
    if args.format == "table":
        text = format_table(columns, rows, args.limit)
    elif args.format == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        writer.writerows(rows)
        text = buf.getvalue().rstrip("\n")
    else:
        text = "\n".join(json.dumps(dict(zip(columns, row)), default=str) for row in rows)
    if args.output:
        Path(args.output).write_text(text + "\n" if text else "")
        print(f"wrote {args.output}", file=sys.stderr)
    elif text:  # no rows in JSON lines is no lines, not one empty line
        print(text)
    return 0


def _refuse_warehouse_path(settings: Settings, output: str) -> None:
    """--output must not land inside the data directory: a result would replace warehouse files."""
    target = Path(output).resolve()
    data = settings.data_path.resolve()
    if target == data or data in target.parents:
        msg = f"--output {output} is inside the data directory {data}; write the result somewhere else"
        raise ToneflowError(msg)


def _stats(args: argparse.Namespace) -> int:
    from warehouse.maintenance import stats

    result = stats(get_settings())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [(t, s["rows"], s["physical_rows"], s["files"], "-" if s["freshness_s"] is None else f"{s['freshness_s']} s")
            for t, s in result["tables"].items()]
    print(format_table(["table", "rows", "physical_rows", "files", "last_write_ago"], rows))
    if result["dlq_by_reason"]:
        print("\nDLQ by reason:")
        print(format_table(["error_kind", "count"], list(result["dlq_by_reason"].items())))
    return 0


def _compact(args: argparse.Namespace) -> int:
    from warehouse.maintenance import compact

    done = compact(get_settings(), min_files=args.min_files)
    for d in done:
        print(f"{d['table']}/{d['partition']}: {d['files_in']} files -> 1 ({d['rows']} rows)")
    print(f"compacted {len(done)} partitions")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from warehouse.audit import audit

    results = audit(get_settings())
    bad = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps({"ok": not bad, "partitions": [r.as_dict() for r in results]}, indent=2))
        return 1 if bad else 0
    rows = [(r.topic, r.partition, r.records, r.rows, r.dlq_only, r.missing, r.ahead,
             " ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in r.gaps) or "-") for r in results]
    print(format_table(["topic", "partition", "records", "rows", "dlq", "missing", "ahead", "gaps"], rows))
    if bad:
        lost = sum(r.missing for r in bad)
        print(f"\naudit FAILED: {lost} records on the log are neither rows nor DLQ rows in {len(bad)} partitions "
              "(an 'ahead' count means the topic was recreated under this warehouse); if the worker is still "
              "catching up, wait and rerun")
        return 1
    print(f"\naudit ok: every record of {len(results)} partitions is a row or a DLQ row")
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from warehouse.catalog import refresh

    print(f"wrote views to {refresh(get_settings())}")
    return 0

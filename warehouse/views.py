"""The SQL of every warehouse view. Stream tables are de-duplicated here, by key, so at-least-once
delivery (a replayed batch, a duplicate event) never shows up twice to a reader.

The duplicate rule, the same in every view:

* An event is identified by ``(project_id, event_id)``: event ids are the app's, so two projects
  may use the same one and both events count.
* Of the rows with one identity, the **first on the log wins**: lowest (partition, offset). Records
  are keyed by project_id, so one project's events share a partition and their offsets are ordered.
* A later prompt or export with the same identity and *different content* is a conflicting
  duplicate: it is listed in the ``conflicting_duplicates`` view and never used. Labels and accepted
  examples are derived from prompts, so they are kept only when they were derived from the winning
  prompt's content (and, for accepted examples, the winning export's timestamp): the prompts,
  labels and accepted views always tell the same story. A later row with the same content (a
  producer retry, a replay) is an ordinary duplicate and simply not shown.

Nothing is deleted from the Parquet files for this (compaction drops only replays of one log
offset, warehouse/maintenance.py): every record stays accounted for (warehouse/audit.py).
"""

from __future__ import annotations

# table -> the columns that identify one logical row
DEDUP_KEYS: dict[str, str] = {
    "prompts": "project_id, event_id",
    "exports": "project_id, event_id",
    "labels": "project_id, event_id",
    "accepted_examples": "project_id, event_id",
    # A DLQ write is itself at-least-once: one row per rejected record per stage.
    "dlq": "stage, coalesce(bad_topic, src_topic), coalesce(bad_partition, src_partition), "
           "coalesce(bad_offset, src_offset)",
}

# table -> which row of one identity the view shows: the first on the log (NULLs sort last)
DEDUP_ORDER: dict[str, str] = {
    "prompts": "src_partition, src_offset, ingested_at",
    "exports": "src_partition, src_offset, ingested_at",
    "labels": "prompt_src_partition, prompt_src_offset, src_partition, src_offset, ingested_at",
    "accepted_examples": "label_src_partition, label_src_offset, src_partition, src_offset, ingested_at",
    "dlq": "src_partition, src_offset, ingested_at",
}

# What "the same content" means for the app-produced events: every field the app sent.
_PROMPT_CONTENT = ("user_id", "ts", "prompt", "served_kind", "served_model", "served_version", "served_variant",
                   "served_edit")
_EXPORT_CONTENT = ("user_id", "ts", "final_edit")
CONTENT_COLUMNS: dict[str, tuple[str, ...]] = {"prompts": _PROMPT_CONTENT, "exports": _EXPORT_CONTENT}

# A label or accepted example agrees with the winning prompt when it carries that prompt's content
# (its prompt's ts is ``prompt_ts`` there).
_FROM_WINNING_PROMPT = " AND ".join(
    f"x.{'prompt_ts' if c == 'ts' else c} IS NOT DISTINCT FROM p.{c}" for c in _PROMPT_CONTENT)


def stream_view_sql(table: str, source: str) -> str:
    """The SELECT of a stream table's view over ``source`` (its Parquet files, every physical row).

    Label and accepted views join the prompts (and exports) *views*, so those are created first.
    """
    window = f"PARTITION BY {_qualified(DEDUP_KEYS[table])} ORDER BY {_qualified(DEDUP_ORDER[table])}"
    first = f"QUALIFY row_number() OVER ({window}) = 1"
    prompt_join = "LEFT JOIN prompts AS p ON p.project_id = x.project_id AND p.event_id = x.event_id"
    if table == "labels":
        return f"SELECT x.* FROM {source} AS x {prompt_join} WHERE p.event_id IS NULL OR ({_FROM_WINNING_PROMPT}) {first}"
    if table == "accepted_examples":
        return (f"SELECT x.* FROM {source} AS x {prompt_join} "
                f"LEFT JOIN exports AS e ON e.project_id = x.project_id AND e.event_id = x.export_event_id "
                f"WHERE (p.event_id IS NULL OR ({_FROM_WINNING_PROMPT})) "
                f"AND (e.event_id IS NULL OR x.export_ts = e.ts) {first}")
    return f"SELECT * FROM {source} AS x {first}"


def _qualified(columns: str) -> str:
    """``a, b`` -> ``x.a, x.b`` for the joined views (plain column lists only; the DLQ key has no join)."""
    parts = [c.strip() for c in columns.split(",")]
    if all(p.isidentifier() for p in parts):
        return ", ".join(f"x.{p}" for p in parts)
    return columns


def conflicting_duplicates_sql(sources: dict[str, str]) -> str:
    """Every later prompt/export whose identity's first row has different content, with the kept offset.

    ``sources`` maps each table of CONTENT_COLUMNS to the SELECT of all its physical rows.
    """
    parts = []
    for table, columns in CONTENT_COLUMNS.items():
        content = "struct_pack(" + ", ".join(f"{c} := {c}" for c in columns) + ")"
        parts.append(f"""
            SELECT '{table}' AS table_name, project_id, event_id, src_topic, src_partition, src_offset,
                   kept_partition, kept_offset, 'conflicting_duplicate' AS error_kind
            FROM (SELECT *, {content} AS content,
                         first_value({content}) OVER w AS kept_content,
                         first_value(src_partition) OVER w AS kept_partition,
                         first_value(src_offset) OVER w AS kept_offset
                  FROM {sources[table]} AS x
                  WINDOW w AS (PARTITION BY project_id, event_id ORDER BY {DEDUP_ORDER[table]}))
            WHERE content IS DISTINCT FROM kept_content""")
    return " UNION ALL ".join(parts) + " ORDER BY table_name, project_id, event_id, src_partition, src_offset"


# 95% Wilson score interval for a completion rate x/n (z = 1.96); sound for small n and p near 0/1.
_WILSON = """
    (p + 1.9208 / n - 1.96 * sqrt(p * (1 - p) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n) AS ci95_low,
    (p + 1.9208 / n + 1.96 * sqrt(p * (1 - p) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n) AS ci95_high
"""

DERIVED_VIEWS: dict[str, str] = {
    # Projects started per A/B variant (the variant that served the project's first prompt) and day.
    "ab_projects": """
        SELECT project_id,
               arg_min(coalesce(served_variant, 'unassigned'), ts) AS variant,
               arg_min(served_kind, ts) AS served_kind,
               arg_min(served_model, ts) AS served_model,
               arg_min(served_version, ts) AS served_version,
               CAST(min(ts) AS DATE) AS day,
               project_id IN (SELECT project_id FROM exports) AS exported
        FROM prompts GROUP BY project_id
    """,
    "ab_completion": f"""
        SELECT variant, day, served_kind, served_model, n AS projects_started,
               x AS projects_exported, p AS project_completion_rate, {_WILSON}
        FROM (SELECT variant, day, any_value(served_kind) AS served_kind, any_value(served_model) AS served_model,
                     count(*) AS n,
                     count(*) FILTER (WHERE exported) AS x, x / n AS p
              FROM ab_projects GROUP BY variant, day)
        ORDER BY day, variant
    """,
    "ab_completion_total": f"""
        SELECT variant, served_kind, served_model, n AS projects_started, x AS projects_exported,
               p AS project_completion_rate, {_WILSON}
        FROM (SELECT variant, any_value(served_kind) AS served_kind, any_value(served_model) AS served_model,
                     count(*) AS n,
                     count(*) FILTER (WHERE exported) AS x, x / n AS p
              FROM ab_projects GROUP BY variant)
        ORDER BY variant
    """,
    # What the teacher costs, and what each *accepted* example cost, per teacher version and day.
    "teacher_spend": """
        WITH l AS (
            SELECT teacher_version, CAST(ts AS DATE) AS day,
                   count(*) FILTER (WHERE NOT cached AND NOT reused_served_edit) AS calls,
                   count(*) FILTER (WHERE cached) AS cache_hits,
                   count(*) FILTER (WHERE reused_served_edit) AS reused_served,
                   -- said served by the teacher, but not vouched for by the server (streams/guard.py)
                   count(*) FILTER (WHERE served_kind = 'teacher' AND served_edit IS NOT NULL
                                          AND NOT reused_served_edit) AS relabelled_unvouched,
                   sum(prompt_tokens + completion_tokens) AS tokens, sum(cost) AS cost
            FROM labels GROUP BY ALL
        ), a AS (
            SELECT teacher_version, CAST(ts AS DATE) AS day, count(*) AS accepted
            FROM accepted_examples GROUP BY ALL
        )
        SELECT l.*, coalesce(a.accepted, 0) AS accepted,
               CASE WHEN coalesce(a.accepted, 0) > 0 THEN l.cost / a.accepted END AS cost_per_accepted
        FROM l LEFT JOIN a USING (teacher_version, day) ORDER BY day, teacher_version
    """,
}

"""The SQL of every warehouse view. Stream tables are de-duplicated here, by key, so at-least-once
delivery (a replayed batch, a duplicate event) never shows up twice to a reader.
"""

from __future__ import annotations

# table -> the columns that identify one logical row
DEDUP_KEYS: dict[str, str] = {
    "prompts": "event_id",
    "exports": "event_id",
    "labels": "event_id",
    "accepted_examples": "event_id",
    # A DLQ write is itself at-least-once: one row per rejected record per stage.
    "dlq": "stage, coalesce(bad_topic, src_topic), coalesce(bad_partition, src_partition), "
           "coalesce(bad_offset, src_offset)",
}

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

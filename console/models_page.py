"""Page Models: versions with their offline, honest and human numbers, curves, the gates' logs, the A/B."""

from __future__ import annotations

import json
import time
from typing import Any

from console.html import e, num, pct, section, table
from console.svg import interval_chart, line_chart
from foundation.settings import Settings

TOOLS = ("adjust", "selective_adjust", "filter")
# The paper's table (Sultan et al. 2024, Table 2): per tool F1, quality, final; and overall.
PAPER = ("overall", *(f"{t}_{k}" for t in TOOLS for k in ("f1", "quality", "final")))
_KEYS = {"eval_id", "version", "ts", "test_set", "subset", "n"}


def _latest_evals(con: Any) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Each version's newest 'All' row of model_evals, whatever columns the trainer wrote."""
    cur = con.execute("SELECT * FROM model_evals WHERE subset = 'All' "
                      "QUALIFY row_number() OVER (PARTITION BY version ORDER BY ts DESC) = 1")
    names = [d[0] for d in cur.description]
    return names, {str(r["version"]): r for r in (dict(zip(names, row)) for row in cur.fetchall())}


def _other_columns(names: list[str], rows: dict[str, dict[str, Any]]) -> list[str]:
    """Numeric eval columns beyond the paper's: the honest-evaluation fields, whichever exist.
    Per-tool details (precision, recall, MAE, support) stay in `toneflow eval --detailed`."""
    out = []
    for name in names:
        if name in _KEYS or name in PAPER or name.startswith(tuple(f"{t}_" for t in TOOLS)):
            continue
        values = [r.get(name) for r in rows.values()]
        if any(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out.append(name)
    return out


def _versions(settings: Settings, con: Any, reviews: dict[str, Any]) -> tuple[str, list[Any]]:
    from trainer.registry import list_models, read_current

    models = list_models(settings)
    names, evals = _latest_evals(con)
    other = _other_columns(names, evals)
    cur = read_current(settings) or {}
    rows = []
    for m in reversed(models):
        ev = evals.get(m.version, {})
        rv = reviews.get(m.version)
        if m.current:
            action = ("<form method='post' action='/models/rollback' class='rollback' onsubmit=\"return confirm("
                      f"'Roll back {e(m.version)} to the previous champion?')\"><button>roll back</button></form>"
                      if cur.get("history") else "<span class='muted'>current</span>")
        else:
            action = ("<form method='post' action='/models/promote' class='promote' onsubmit=\"return confirm("
                      f"'Promote {e(m.version)} to current?')\"><input type='hidden' name='version' "
                      f"value='{e(m.version)}'><label class='muted'><input type='checkbox' name='force'> skip gates"
                      "</label> <button>promote</button></form>")
        paper = [num(ev.get("overall"))] + [" / ".join(num(ev.get(f"{t}_{k}"), 2) for k in ("f1", "quality", "final"))
                                            for t in TOOLS]
        extra = [num(ev.get(c)) for c in other]
        human = [num(rv.items if rv else 0), pct(rv.student_relevance if rv else None),
                 pct(rv.mimicry if rv else None), num(rv.kappa_mimicry if rv else None, 2)]
        rows.append([f"<b>{e(m.version)}</b>{' ★' if m.current else ''}", e(m.student), num(ev.get("n")),
                     *paper, *extra, *human, action])
    columns = ["version", "student", "n test", "overall", *(f"{t} F1 / quality / final" for t in TOOLS),
               *other, "reviewed items", "relevance", "mimicry",
               "κ mimicry", ""]
    body = ("<p class='muted'>paper metrics (Table 2), then the honest-evaluation columns the trainer wrote, then "
            "the blind review's numbers (Fleiss' κ needs two reviewers on the same items). ★ = current.</p>"
            "<div style='overflow-x:auto'>" + table(columns, rows, raw=True) + "</div>")
    return section("Versions", body, "versions"), models


def _curves(settings: Settings, models: list[Any]) -> str:
    from trainer.registry import manifest

    losses: dict[str, list[float]] = {}
    vals: dict[str, list[float]] = {}
    for m in models[-6:]:
        fit = manifest(settings, m.version).get("fit") or {}
        losses[m.version] = [float(x) for x in fit.get("losses") or []]
        vals[m.version] = [float(x) for x in fit.get("val_scores") or []]
    return section("Training curves (per epoch)", "<div class='grid'><div><h3>training loss</h3>"
                   + line_chart(losses, y_label="loss") + "</div><div><h3>validation overall</h3>"
                   + line_chart(vals, y_label="overall") + "</div></div>", "curves")


def _pick(row: dict[str, Any], *names: str) -> list[Any]:
    return [row.get(n) for n in names]


def _gates(settings: Settings, con: Any) -> str:
    from trainer.registry import read_current

    cur = read_current(settings)
    pointer = ("<p class='muted'>no model promoted yet</p>" if cur is None else
               f"<p>current <b>{e(cur.get('version'))}</b> (last move: {e(cur.get('action', '?'))}, "
               f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(float(cur.get('at', 0))))} UTC); "
               f"history {e(' → '.join(cur.get('history', [])[-6:]) or '—')}</p>")
    cur_runs = con.execute("SELECT * FROM training_runs ORDER BY ts DESC LIMIT 12")
    names = [d[0] for d in cur_runs.description]
    runs = [_pick(dict(zip(names, r)), "version", "ts", "train_rows", "promoted") for r in cur_runs.fetchall()]
    cur_dec = con.execute("SELECT * FROM rollout_decisions ORDER BY ts DESC LIMIT 15")
    names = [d[0] for d in cur_dec.description]
    decisions = [_pick(dict(zip(names, r)), "ts", "verdict", "candidate_variant", "candidate_rate",
                       "champion_variant", "champion_rate", "p_noninferior", "action", "reason")
                 for r in cur_dec.fetchall()]
    return section("Gate decisions", pointer + "<h3>offline gate (training runs)</h3>"
                   + table(["version", "trained", "train rows", "promoted"], runs)
                   + "<h3>online gate (rollout decisions)</h3>"
                   + table(["when", "verdict", "candidate", "rate", "champion", "rate", "p non-inferior", "action",
                            "reason"], decisions), "gates")


def _plan(settings: Settings) -> tuple[str, list[tuple[Any, ...]]]:
    """The traffic plan as the server reads it. The console sits beside serving/ (neither imports the
    other), so it reads the plan file serving/ab.py writes rather than that module."""
    path = settings.data_path / "serving" / "traffic.json"
    if not path.exists():
        return (f"no plan file: the default plan (student share {settings.serve_student_share:.0%} once a model is "
                "current)"), []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        arms = raw["arms"]
        total = sum(float(a["weight"]) for a in arms) or 1.0
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"the plan file {path} cannot be read ({err}); `toneflow rollout status` says more", []
    rows = [(a["variant"] + (" (champion)" if a["variant"] == raw.get("champion") else ""), a["kind"],
             a.get("model") or "", pct(float(a["weight"]) / total)) for a in arms]
    return f"experiment {raw.get('experiment')}", rows


def _ab(settings: Settings, con: Any) -> str:
    title, arms = _plan(settings)
    rows = con.execute("SELECT variant, projects_started, projects_exported, project_completion_rate, ci95_low, "
                       "ci95_high FROM ab_completion_total ORDER BY variant").fetchall()
    chart = interval_chart([(str(v), float(p), float(lo), float(hi)) for v, _, _, p, lo, hi in rows if p is not None])
    return section(f"A/B: {title}", "<div class='grid'><div>" + table(["arm", "kind", "model", "share"], arms)
                   + "</div><div><p class='muted'>project completion rate, 95% Wilson interval</p>" + chart
                   + table(["variant", "started", "exported", "completion", "95% low", "95% high"], rows)
                   + "</div></div>", "ab")


def _reviews(reviews: dict[str, Any]) -> str:
    rows = [(v, s.ratings, s.items, s.reviewers, pct(s.student_relevance), pct(s.teacher_relevance), pct(s.mimicry),
             s.shared_items, num(s.kappa_relevance, 2), num(s.kappa_mimicry, 2))
            for v, s in sorted(reviews.items(), reverse=True)]
    return section("Blind review (the paper's reality check)", table(
        ["version", "ratings", "items", "reviewers", "student relevant", "teacher relevant", "student ≈ teacher",
         "items with ≥2 reviewers", "κ relevance", "κ mimicry"], rows), "reviews")


def render(settings: Settings, con: Any) -> str:
    from warehouse.reviews import review_stats

    reviews = review_stats(con)
    versions, models = _versions(settings, con, reviews)
    return versions + _reviews(reviews) + _curves(settings, models) + _gates(settings, con) + _ab(settings, con)

"""The evaluation report written next to a model: ``report.md`` + PNG plots.

Plots: per-tool bars (F1, quality, final), mean absolute error per parameter, and the confusion
of filter names (reference rows × predicted columns) over samples where both use a filter.
Matplotlib runs headless (Agg); nothing here needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.edit import TOOLS
from trainer.evaluate import EvalResult, detail_table, honest_table, paper_table


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tool_bars(result: EvalResult, path: Path) -> None:
    plt = _plt()
    s = result.subsets["All"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.25
    for k, metric in enumerate(("f1", "quality", "final")):
        values = [getattr(s.tools[t], metric) for t in TOOLS]
        ax.bar([i + (k - 1) * width for i in range(len(TOOLS))], values, width, label=metric)
    ax.set_xticks(range(len(TOOLS)), list(TOOLS))
    ax.set_ylim(0, 1.15)  # headroom so the legend never covers a bar
    ax.set_title(f"per-tool scores (overall {s.overall:.3f}, n={s.n})")
    ax.legend(loc="upper center", ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _param_error(result: EvalResult, path: Path) -> None:
    plt = _plt()
    mae = {k: v for k, v in result.subsets["All"].param_mae.items() if k.startswith("adjust.") or v > 0}
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.18 * len(mae) + 1)))
    names = list(mae) or ["(no samples)"]
    ax.barh(names, [mae.get(n, 0.0) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("mean |predicted - reference| (points, over samples where both use the tool)")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _confusion(result: EvalResult, path: Path) -> None:
    plt = _plt()
    conf = result.subsets["All"].filter_confusion
    names = sorted(set(conf) | {p for row in conf.values() for p in row}) or ["(none)"]
    grid = [[conf.get(r, {}).get(c, 0) for c in names] for r in names]
    fig, ax = plt.subplots(figsize=(0.3 * len(names) + 3, 0.3 * len(names) + 2.5))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_xlabel("predicted filter")
    ax.set_ylabel("reference filter")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(directory: Path, result: EvalResult, *, title: str, context: dict[str, Any] | None = None) -> Path:
    """Write report.md and three PNGs into ``directory``; returns the Markdown path."""
    directory.mkdir(parents=True, exist_ok=True)
    _tool_bars(result, directory / "tools.png")
    _param_error(result, directory / "param_error.png")
    _confusion(result, directory / "filter_confusion.png")
    lines = [f"# {title}", ""]
    for key, value in (context or {}).items():
        lines.append(f"- **{key}**: {value}")
    lines += ["", "## Paper format (F1, quality, final per tool)", "", paper_table([(title, result.subsets)]), ""]
    lines += ["## Honest evaluation: look subsets, rendered agreement, real requests", "",
              "The test set shares no intent group with training (trainer/grouping.py). *Seen looks, new*",
              "*wording*: the reference edit also labels training rows of other intents; *unseen looks*: it",
              "does not. ΔE: mean CIEDE2000 between renders of prediction and reference on 8 photographs;",
              "direction agreement: share of (example, statistic) where the reference moves the photo and",
              "the prediction moves it the same way (trainer/rendered.py).", "",
              honest_table(result, title), ""]
    if result.rendered is not None:
        worst = sorted(result.rendered.per_example(result.ids), key=lambda r: -r["delta_e"])[:10]
        lines += ["### Largest rendered differences", "", "| id | ΔE | disagrees on |", "|---|---|---|"]
        lines += [f"| {r['id']} | {r['delta_e']:.2f} | {', '.join(r['disagrees_on']) or '-'} |" for r in worst]
        lines.append("")
    if result.requests is not None and result.requests.failures:
        lines += ["### Real requests not met (first 10)", "", "| prompt | statistic | asked | moved |", "|---|---|---|---|"]
        lines += [f"| {f['prompt'][:70]} | {f['statistic']} | {f['asked']} | {f['moved']:+.4f} |"
                  for f in result.requests.failures[:10]]
        lines.append("")
    for name, s in result.subsets.items():
        lines += [f"## {name}", "", detail_table(s), ""]
    lines += ["![per-tool scores](tools.png)", "", "![parameter error](param_error.png)", "",
              "![filter confusion](filter_confusion.png)", ""]
    path = directory / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

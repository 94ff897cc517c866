"""The end-of-demo report: what flowed, what was trained, how it scored offline and online."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

PAPER_ROWS = (  # Sultan et al. 2024, Table 2: (tool-selection, quality, final) per tool, and overall
    ("paper Llama-2-7b-chat", "All", ((.95, .63, .76), (.75, .66, .70), (.81, .71, .76)), .74),
    ("paper FlanT5-base", "All", ((.95, .57, .72), (.76, .65, .70), (.78, .71, .74)), .72),
    ("paper FlanT5-base", "r_5", ((.99, .68, .80), (.90, .71, .79), (.89, .82, .85)), .81),
)
TOOLS = ("adjust", "selective_adjust", "filter")
SHEET_PROMPTS = ("golden hour", "make it moodier", "Morocco", "black and white", "cool tone")


def _md_table(columns: list[str], rows: list[Any]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_rows(con: Any) -> list[tuple[Any, ...]]:
    rows = []
    for name, subset, tools, overall in PAPER_ROWS:
        rows.append((name, subset, *(" ".join(f"{x:.2f}" for x in t) for t in tools), overall))
    evals = con.execute(
        "SELECT version, subset, n, overall, " +
        ", ".join(f"{t}_f1, {t}_quality, {t}_final" for t in TOOLS) +
        " FROM model_evals ORDER BY version, subset").fetchall()
    for version, subset, n, overall, *vals in evals:
        triples = [" ".join(f"{x:.2f}" for x in vals[i:i + 3]) for i in range(0, 9, 3)]
        rows.append((f"toneflow {version}", f"{subset} (n={n})", *triples, overall))
    return rows


HONEST_COLUMNS = ["model", "test n", "overall (intent-disjoint)", "group-balanced overall", "seen looks, new wording",
                  "unseen looks", "ΔE vs teacher", "direction agreement", "real requests"]


def _registry_eval(settings: Any, version: str, test_set: str | None) -> dict[str, Any]:
    """The eval as the registry stores it: its group-balanced overall (rows weighted 1 / group size)
    and each subset's ceiling (trainer.evaluate.EvalResult.ceilings) have no warehouse column."""
    from trainer import registry

    if settings is None or not test_set:
        return {}
    try:
        return registry.read_eval(settings, version, test_set) or {}
    except Exception:  # noqa: BLE001 - a model gone from the registry: nothing to show
        return {}


def honest_rows(con: Any, settings: Any = None) -> list[tuple[Any, ...]]:
    """Per model: overall on the intent-disjoint test (row-weighted: the paper's and the targets'
    metric; then group-balanced: every intent once) and its two look subsets, rendered agreement
    with the teacher's edits (ΔE, direction agreement), real-request direction accuracy."""
    try:
        evals = con.execute(
            "SELECT version, subset, n, overall, delta_e, direction_agreement, request_accuracy, test_set "
            "FROM model_evals WHERE subset IN ('All', 'seen_looks', 'unseen_looks') ORDER BY version").fetchall()
    except Exception:  # noqa: BLE001 - evals written before these columns existed: nothing to show
        return []
    by: dict[str, dict[str, tuple[Any, ...]]] = {}
    for version, subset, *rest in evals:
        by.setdefault(version, {})[subset] = tuple(rest)
    rows = []
    for version, subsets in by.items():
        n, overall, delta_e, agreement, requests, test_set = subsets.get("All", (None,) * 6)
        seen = subsets.get("seen_looks", (None, None))
        unseen = subsets.get("unseen_looks", (None, None))
        stored = _registry_eval(settings, version, test_set)
        ceilings = stored.get("ceilings", {})
        rows.append((f"toneflow {version}", n, overall, stored.get("group_balanced_overall"),
                     _with_n(seen, ceilings.get("seen_looks")), _with_n(unseen, ceilings.get("unseen_looks")),
                     delta_e, agreement, requests))
    return rows


def _with_n(subset: tuple[Any, ...], ceiling: float | None = None) -> str:
    n, overall = subset[0], subset[1]
    if overall is None:
        return "-"
    from trainer.evaluate import ceiling_note  # shown only where it bites: a perfect model scores below 1

    return f"{overall:.3f} (n={n}{ceiling_note(ceiling)})"


def request_rows(settings: Any, student: Any = None) -> tuple[str, list[tuple[str, int, int, float]]]:
    """(request set, [(who, met, n, accuracy)]) for the student (default: current) and the offline teacher."""
    from editor.lookcompare import LookRenders
    from trainer.registry import load_student
    from trainer.requests import default_requests, run_requests, teacher_predict

    name, requests = default_requests(settings)
    student = student or load_student(settings)
    renders = LookRenders()
    rows = []
    for who, predict in ((f"student {getattr(student, 'version', '')}".strip(), student.predict),
                         ("offline teacher", teacher_predict())):
        r = run_requests(predict, requests, renders)
        rows.append((who, r.met, r.n, r.accuracy))
    return name, rows


def honest_section(con: Any, settings: Any, student: Any = None) -> list[str]:
    """The demo report's honest-evaluation section (Markdown lines)."""
    from trainer.exceptions import NoCurrentModel

    try:
        name, requests = request_rows(settings, student)
    except NoCurrentModel:
        name, requests = "none", []  # the demo trained nothing: there is no student to ask
    shown = {"builtin": "the built-in requests (shared set absent)",
             "none": "nothing to ask (no model was trained)"}.get(name, "the shared real-request dev set")
    return ["## Honest evaluation: unseen intents, rendered looks, real requests", "",
            "The test split shares no intent group (all wordings of an intent) with training. Overall is",
            "row-weighted (the paper's metric, and the one the targets name); group-balanced weighs each row",
            "1 / its intent group's size, so a popular intent counts once. *Seen looks, new wording*: what the",
            "row asks for, read by the noise-free teacher (its looks, its instructions' attribute and",
            "direction: trainer/look_keys.py), is also asked for by training rows of other intents; *unseen",
            "looks*: it is not. ΔE: mean CIEDE2000 between renders of the student's and the teacher's edit on",
            "8 photographs; direction agreement: share of (example, statistic) where the teacher's edit moves",
            "the photo and the student's moves it the same way. *A perfect model*, where shown: what a model that",
            "reproduced every reference of the subset would score; it is below 1 when no reference of the subset",
            "uses some tool (that tool's F1 is 0 by the paper's definition, trainer/metrics.py), so read the",
            "subset's overall against it.", "",
            _md_table(HONEST_COLUMNS, honest_rows(con, settings)), "",
            f"Real-request direction accuracy on {shown}:", "",
            _md_table(["who", "met", "requests", "accuracy"], requests), ""]


PAPER_STUDENT_S = 1.38  # the paper's fastest student: FlanT5-base on an L4 GPU, seconds per request


def latency(settings: Any, prompts: list[str]) -> list[tuple[str, float, float, float, float]]:
    """(who, p50 ms, p95 ms, ratio to the student, how many times faster than the paper's 1.38 s)
    for one prompt at a time."""
    import torch

    from serving.models import load_version
    from teacher.offline import OfflineTeacher
    from trainer.registry import resolve

    torch.set_num_threads(max(1, settings.serve_torch_threads))  # as the server runs it
    student = load_version(settings, resolve(settings, "current"))  # as the server loads it (int8)
    teacher = OfflineTeacher()
    teacher.label_sync(prompts[:2])
    student.predict(prompts[:2])  # warm both

    def timed(fn: Any) -> list[float]:
        out = []
        for p in prompts:
            t0 = time.perf_counter()
            fn([p])
            out.append((time.perf_counter() - t0) * 1000)
        return sorted(out)

    s, t = timed(student.predict), timed(teacher.label_sync)
    p95 = lambda xs: xs[int(0.95 * (len(xs) - 1))]  # noqa: E731
    sm, tm = statistics.median(s), statistics.median(t)
    runtime = getattr(student, "runtime", "torch")  # onnx-int8 when the promote stored an export
    return [(f"student (current, {runtime})", sm, p95(s), 1.0, PAPER_STUDENT_S * 1000 / sm),
            ("offline teacher", tm, p95(t), tm / sm, PAPER_STUDENT_S * 1000 / tm)]


def augmented_rows(settings: Any, con: Any) -> list[tuple[str, str, int, int]]:
    """(version, label source, rows, of train rows) for the augmented rows each run trained on."""
    from trainer import snapshot
    from trainer.exceptions import TrainerError

    out = []
    for version, snap_id in con.execute("SELECT version, snapshot FROM training_runs ORDER BY version").fetchall():
        try:
            train = snapshot.load(settings, snap_id).rows("train")
        except TrainerError:
            continue  # the snapshot is gone: nothing to count
        counts = Counter(r.label_source for r in train if r.augmented)
        out += [(version, source, n, len(train)) for source, n in sorted(counts.items())]
    return out


def augmented_section(settings: Any, con: Any) -> list[str]:
    rows = augmented_rows(settings, con)
    if not rows:
        return []
    return ["Augmented rows among each run's training rows (teacher-labelled or derived, train split only; "
            "intent groups held out for validation and test screened out; `library`: requests for the "
            "teacher's look-library phrases, trainer/library_rows.py; `pool`: real users' requests from the shared "
            "pool, labelled by the offline teacher, trainer/pool_rows.py; `grammar`: explicit requests drawn from "
            "the simulator's request grammar, labelled by the offline teacher, trainer/grammar_rows.py):", "",
            _md_table(["version", "label source", "rows", "of train rows"], rows), ""]


def write_report(demo: Any) -> Path:
    from streams.vocabulary import INTENTS
    from toneflow.demo_triggers import trigger_section
    from warehouse.catalog import connect
    from warehouse.maintenance import stats

    settings, root = demo.settings, demo.root
    con = connect(settings)
    st = stats(settings)
    parts = ["# toneflow demo report", ""]
    parts += ["## Events through the pipeline", "",
              _md_table(["table", "rows", "physical rows", "files"],
                        [(t, s["rows"], s["physical_rows"], s["files"]) for t, s in st["tables"].items()]), ""]
    parts += ["DLQ by reason: " + (", ".join(f"{k}={v}" for k, v in st["dlq_by_reason"].items()) or "none"), ""]
    runs = con.execute("SELECT version, student, train_rows, round(fit_seconds) AS fit_s, steps, epochs, promoted "
                       "FROM training_runs ORDER BY version").fetchall()
    parts += ["## Training runs", "", _md_table(["version", "student", "train rows", "fit s", "steps", "epochs",
                                                 "promoted"], runs), ""]
    parts += augmented_section(settings, con)
    parts += trigger_section(settings, demo.facts.get("trigger"))
    parts += ["## Offline metrics (tool selection F1, quality, final per tool; intent-disjoint test split)", "",
              _md_table(["model", "test", "adjust", "selective adjust", "filter", "overall"], metrics_rows(con)), ""]
    parts += honest_section(con, settings)
    ab = con.execute("SELECT variant, served_kind || ' ' || served_model, "
                     "projects_started, projects_exported, project_completion_rate, "
                     "ci95_low, ci95_high FROM ab_completion_total ORDER BY variant").fetchall()
    parts += ["## Online A/B: project completion rate per variant (95% Wilson interval)", "",
              _md_table(["variant", "served by", "started", "exported", "rate", "ci low", "ci high"], ab), "",
              "Online gate: " + str(demo.facts.get("rollout", "not run")).replace("\n", "  \n"), ""]
    lat = latency(settings, [p for p in INTENTS[:60]])
    parts += ["## Latency, one prompt at a time on this CPU (ms)", "",
              _md_table(["who", "p50 ms", "p95 ms", "x student", "x faster than 1.38 s"], lat),
              "", "The paper's students: FlanT5-base 1.38 s (L4 GPU), Llama-2-7b 1.63 s (A100).", ""]
    sheet = root / "contact_sheet.png"
    args = ["contact-sheet", "sample:astronaut", str(sheet), "--model", "student", "--model", "teacher",
            "--columns", str(len(SHEET_PROMPTS) + 1), "--tile-width", "240"]
    for p in SHEET_PROMPTS:
        args += ["--prompt", p]
    demo.toneflow(*args)
    parts += ["## Contact sheet", "", f"![student vs teacher]({sheet.name}) — {sheet}", ""]
    path = root / "report.md"
    path.write_text("\n".join(parts))
    return path

"""The online A/B metric, offline: expected project completion of students and the teacher, by request kind.

    TONEFLOW_DATA_DIR=data/demo .venv/bin/python benchmarks/bench_completion.py            # current model
    TONEFLOW_DATA_DIR=data/demo .venv/bin/python benchmarks/bench_completion.py --versions v000001,v000002

Why: the demo's A/B gate compares completion rates, and its students scored 0.85-0.90 offline while
losing the A/B by 10-15 points. The offline overall counts a tool right when it is used with roughly
the right parameters; a simulated user exports only when the served edit points almost exactly
where the hidden intent does (``streams.simulator.similarity``: 0.6 x the cosine of the parameter
vectors + 0.4 x same filter; ``export_probability`` is 0.05 below 0.7 and grows with the square of
the distance above it, to 0.70 at 1.0). This script applies that same rule, without the broker,
the server and the sampling noise of a 1,600-project A/B: fresh simulated projects
(``streams.simulator.Users`` with its own seed, the default mix of looks, grammar requests and real
pool requests), each model's edit for what the user typed, and the mean export probability against
what the user wanted. It is the simulator's reading of closeness, not people's; the honest measures
of language stay the intent-disjoint test split and the real-request dev set (``bench_quality.py``).

Prints one row per model: mean export probability over all projects and per kind, with n. Two
teacher rows: the offline teacher as it labels (temperature 0, the reference of the mixes below),
and the teacher arm of the demo's A/B, which serves as the teacher that served the traffic does
(``SERVED_TEMPERATURE``, an LLM-like noisy teacher; toneflow/demo_steps.py): the online gate compares
a student with that arm, so the bar printed under the table is that arm minus the demo's margin
(a point estimate: the gate also wants the difference significant at the A/B's sample size).

``--diagnose`` adds, per student, where its completion is lost against the teacher's: its raw head
outputs decoded again with the "changed" gates moved (more or fewer parameters), and two mixes of
its edit with the teacher's (the teacher's choice of parameters and signs with the student's sizes;
the student's choice of parameters with the teacher's values). A decode-time change shows up in
the first rows; how far each half of the problem is from the teacher, in the last two.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any


def expected_completion(predict: Callable[[list[str]], Sequence[Any]], drawn: Sequence[tuple[str, str]],
                        users: Any) -> dict[str, list[float]]:
    """Export probability of each drawn project under ``predict``, grouped by request kind (and "all")."""
    from streams.simulator import export_probability, similarity

    edits = predict([text for _, text in drawn])
    by_kind: dict[str, list[float]] = defaultdict(list)
    for (intent, _), edit in zip(drawn, edits, strict=True):
        p = export_probability(similarity(edit, users.hidden(intent)))
        by_kind[users.kinds[intent]].append(p)
        by_kind["all"].append(p)
    return by_kind


GATE_SHIFTS = (-1.0, -0.5, 0.5, 1.0)  # added to the "changed" gate logits: > 0 keeps more parameters


def _edit(values: Sequence[int], filter_of: Any) -> Any:
    """The edit whose adjust and selective values are ``values`` (in ``adjust_vector`` then
    ``selective_vector`` order, 0 = unchanged), with ``filter_of``'s filter."""
    from schemas.edit import ADJUST_PARAMS, COLOUR_RANGES, HSL_CHANNELS
    from schemas.validation import validate_edit

    n = len(ADJUST_PARAMS)
    out: dict[str, Any] = {}
    adjust = {p: v for p, v in zip(ADJUST_PARAMS, values[:n], strict=True) if v}
    if adjust:
        out["adjust"] = adjust
    for i, v in enumerate(values[n:]):
        if v:
            colour, channel = COLOUR_RANGES[i // len(HSL_CHANNELS)], HSL_CHANNELS[i % len(HSL_CHANNELS)]
            out.setdefault("selective_adjust", {}).setdefault(colour, {})[channel] = v
    if "filter" in (canon := filter_of.canonical_dict()):
        out["filter"] = canon["filter"]
    return validate_edit(out)


def _values(edit: Any) -> list[int]:
    from schemas.edit import adjust_vector, selective_vector

    return adjust_vector(edit) + selective_vector(edit)


def teachers_choice(teacher: Any, sizes: Sequence[float]) -> Any:
    """The teacher's parameters, signs and filter, each parameter sized by ``sizes`` (the student's
    raw sizes of every value, in ``_values`` order; at least 1, at most 100)."""
    return _edit([(1 if v > 0 else -1) * max(1, min(100, round(abs(s)))) if v else 0
                  for v, s in zip(_values(teacher), sizes, strict=True)], teacher)


def students_choice(teacher: Any, student: Any) -> Any:
    """The student's parameters and filter, each valued as the teacher values it where the teacher
    changes it (the student's own value elsewhere)."""
    return _edit([(t or s) if s else 0 for t, s in zip(_values(teacher), _values(student), strict=True)], student)


def diagnose(student: Any, teacher_edits: Sequence[Any], drawn: Sequence[tuple[str, str]],
             users: Any) -> list[tuple[str, dict[str, list[float]]]]:
    """(row name, export probabilities by kind) of the student's edits decoded or mixed as described
    in the module docstring."""
    from trainer.students import structured

    raw = student.head_outputs([text for _, text in drawn])
    rows: list[tuple[str, dict[str, list[float]]]] = []

    def fixed(edits: Sequence[Any]) -> Callable[[list[str]], Sequence[Any]]:
        return lambda _texts: edits

    served = structured.decode(raw)
    rows.append(("as served", expected_completion(fixed(served), drawn, users)))
    for shift in GATE_SHIFTS:
        moved = {**raw, "adj_gate": raw["adj_gate"] + shift, "sel_gate": raw["sel_gate"] + shift}
        rows.append((f"changed gates {shift:+g} (logit)", expected_completion(fixed(structured.decode(moved)),
                                                                              drawn, users)))
    # Sizes from the magnitude heads ("direction" heads), else the regressed values' size.
    adj, sel = raw.get("adj_mag", raw["adj"]), raw.get("sel_mag", raw["sel"])
    sizes = [a + s for a, s in zip((abs(adj) * 100).tolist(), (abs(sel) * 100).tolist(), strict=True)]
    rows.append(("teacher's parameters and signs, student's sizes",
                 expected_completion(fixed([teachers_choice(t, s) for t, s in zip(teacher_edits, sizes)]),
                                     drawn, users)))
    rows.append(("student's parameters, teacher's values",
                 expected_completion(fixed([students_choice(t, s) for t, s in zip(teacher_edits, served)]),
                                     drawn, users)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", default="current",
                        help="comma-separated registry versions of TONEFLOW_DATA_DIR: current, previous, v000007 or 7")
    parser.add_argument("--projects", type=int, default=3000, help="simulated projects (one request each)")
    parser.add_argument("--seed", type=int, default=4242, help="the simulated users' seed (not the traffic's)")
    parser.add_argument("--diagnose", action="store_true",
                        help="per student, where its completion is lost against the teacher's (see above)")
    args = parser.parse_args()
    if args.projects < 1:
        parser.error("--projects must be at least 1")

    from foundation.errors import ToneflowError
    from foundation.settings import get_settings
    from schemas.edit import Edit
    from streams.simulator import Users
    from trainer import registry

    settings = get_settings()
    try:  # "current", "previous", "v000007" or "7"; a clear error names what the registry has
        names = [registry.resolve(settings, v.strip()) for v in args.versions.split(",") if v.strip()]
    except ToneflowError as err:
        parser.error(f"{err} (registry: {settings.data_path})")

    users = Users(args.seed, settings=settings)
    drawn = users.draw(args.projects)
    print(f"# Expected completion on {args.projects} simulated projects (users seed {args.seed}, mix {users.mix})\n")

    from streams.simulator import SERVED_TEMPERATURE
    from teacher.offline import OfflineTeacher
    from toneflow.demo_steps import DEMO_ROLLOUT_MARGIN

    def labeller(temperature: float) -> Callable[[list[str]], list[Edit]]:
        teacher = OfflineTeacher(temperature=temperature, seed=settings.seed)

        def predict(texts: list[str]) -> list[Edit]:
            labels = {lab.prompt: lab.edit or Edit() for lab in teacher.label_sync(sorted(set(texts)))}
            return [labels[t] for t in texts]
        return predict

    # Labelled once: the teacher's row and the diagnosis's mixes read the same edits.
    labelled = time.monotonic()
    teacher_edits = labeller(settings.teacher_temperature)([text for _, text in drawn])
    labelling_s = time.monotonic() - labelled
    arm = f"teacher arm of the demo's A/B (temperature {SERVED_TEMPERATURE:g}, seed {settings.seed})"
    students = {version: registry.load_student(settings, version) for version in names}
    clean = f"offline teacher (temperature {settings.teacher_temperature:g})"
    models: list[tuple[str, Callable[[list[str]], Sequence[Any]]]] = [
        (clean, lambda _texts: teacher_edits),
        (arm, labeller(SERVED_TEMPERATURE))]
    models += [(f"student {version}", student.predict) for version, student in students.items()]

    kinds = ["all", "looks", "explicit", "real"]

    def row(name: str, by_kind: dict[str, list[float]], seconds: str = "") -> None:
        cells = [f"{statistics.mean(by_kind[k]):.3f} (n={len(by_kind[k])})" if by_kind.get(k) else "-" for k in kinds]
        print(f"| {name} | " + " | ".join(cells) + f" | {seconds} |", flush=True)

    print("| model | " + " | ".join(kinds) + " | s |")
    print("|---|" + "---|" * (len(kinds) + 1))
    means: dict[str, float] = {}
    for name, predict in models:
        t0 = time.monotonic()
        by_kind = expected_completion(predict, drawn, users)
        means[name] = statistics.mean(by_kind["all"])
        row(name, by_kind, f"{time.monotonic() - t0 + (labelling_s if name == clean else 0.0):.0f}")
    print(f"\nthe demo's online gate, as a point estimate: a student needs >= {means[arm] - DEMO_ROLLOUT_MARGIN:.3f} "
          f"(the teacher arm {means[arm]:.3f} - the demo's margin {DEMO_ROLLOUT_MARGIN:g})")
    if not args.diagnose:
        return
    for version, student in students.items():
        if not hasattr(student, "head_outputs"):
            print(f"\n{version}: no raw head outputs to diagnose ({type(student).__name__}); skipped")
            continue
        print(f"\n## Where student {version} loses completion (same projects; mixed with the offline teacher's edits)\n")
        print("| decoded or mixed | " + " | ".join(kinds) + " | |")
        print("|---|" + "---|" * (len(kinds) + 1))
        for name, by_kind in diagnose(student, teacher_edits, drawn, users):
            row(name, by_kind)


if __name__ == "__main__":
    main()

"""One time budget for a whole fit: every phase, its last validation included, ends inside it.

The acceptance job missed its 15 minutes because the budget only bounded phase 2 and was checked
before, not after, the validation that closes it (docs/benchmarks.md "Training", round 6). These
tests drive ``train_loop`` with steps and validations of known cost (sleeps), and the MiniLM
student's two phases with a budget far smaller than its epochs would take.
"""

from __future__ import annotations

import time

import pytest

from trainer.students.base import Budget, FitConfig, FitReport, train_loop


def _loop(step_s: float, val_s: float, *, deadline: float | None, epochs: int = 50, n_val: int = 0,
          max_minutes: float = 0.0) -> tuple[FitReport, float, int]:
    calls = {"validations": 0}

    def step(idx: list[int]) -> float:
        time.sleep(step_s)
        return 1.0

    def validate() -> float:
        time.sleep(val_s)
        calls["validations"] += 1
        return float(calls["validations"])  # always better: early stopping never ends the loop

    start = time.monotonic()
    report = train_loop(n_train=40, cfg=FitConfig(epochs=epochs, batch_size=8, patience=epochs, progress=False,
                                                  max_minutes=max_minutes),
                        step=step, validate=validate, snapshot=lambda: None, restore=lambda s: None,
                        desc="phase", deadline=deadline, n_val=n_val)
    return report, time.monotonic() - start, calls["validations"]


def test_the_last_validation_ends_inside_the_deadline() -> None:
    # 5 steps of 20 ms + a 300 ms validation = 0.4 s an epoch; a budget of 1.3 s holds 3 epochs,
    # and a loop that checked only before validating would start a 4th and end at ~1.6 s
    deadline = time.monotonic() + 1.3
    report, took, validations = _loop(0.02, 0.3, deadline=deadline)
    assert time.monotonic() <= deadline + 0.05
    assert validations >= 2 and report.steps >= 10  # it used the budget rather than stopping at once
    assert report.epochs == validations and any("time budget" in note for note in report.notes)
    assert report.phases == {"phase": pytest.approx(took, abs=0.05)}


def test_max_minutes_bounds_the_loop_the_same_way() -> None:
    start = time.monotonic()
    report, _, _ = _loop(0.02, 0.3, deadline=None, max_minutes=1.3 / 60)
    assert time.monotonic() - start <= 1.35 and report.epochs >= 2


def test_before_the_first_validation_its_cost_is_estimated_from_n_val() -> None:
    # 120 validation rows = 15 batches, estimated at a third of a 20 ms step each (0.1 s, what the
    # validation takes): a budget of 0.25 s has room for a few steps, not for steps until its end
    deadline = time.monotonic() + 0.25
    report, _, validations = _loop(0.02, 0.1, deadline=deadline, n_val=120)
    assert time.monotonic() <= deadline + 0.05
    assert validations == 1 and 1 <= report.steps <= 6


def test_without_a_budget_every_epoch_runs() -> None:
    report, _, validations = _loop(0.0, 0.0, deadline=None, epochs=4)
    assert validations == 4 and report.steps == 20 and not report.notes


def test_budget_hands_out_deadlines_inside_one_span() -> None:
    budget = Budget(2.0)
    assert budget.deadline == pytest.approx(budget.start + 120)
    share = budget.share(0.25)
    assert share is not None and time.monotonic() + 29 < share <= time.monotonic() + 30
    late = Budget(2.0)
    late.start -= 100  # 100 s of it spent: a quarter (30 s) from now would end past the budget
    assert late.share(0.25) == late.deadline
    left = budget.left()
    assert left is not None and 119 < left <= 120
    none = Budget(0)
    assert none.deadline is None and none.share(0.5) is None and none.left() is None


torch = pytest.importorskip("torch")

ROWS = [("golden hour", {"adjust": {"temperature": 30, "highlights": 20}}),
        ("film noir", {"adjust": {"contrast": 40, "saturation": -100}}),
        ("cool morning", {"adjust": {"temperature": -25, "exposure": 10}}),
        ("lush greens", {"selective_adjust": {"green": {"saturation": 30, "luminance": 10}}})]


@pytest.mark.parametrize("pooling", ["labelwise", "mean"])
def test_minilm_fit_keeps_both_phases_inside_one_budget(pooling: str) -> None:
    from trainer.data import make_example
    from trainer.students.minilm import HEADS_BUDGET_SHARE, MiniLMConfig, MiniLMStudent

    torch.set_num_threads(1)
    rows = [make_example(f.format(p=p), e) for p, e in ROWS for f in ("{p}", "make it {p}", "{p} please", "{p} look")]
    budget_s = 8.0
    # far more epochs than fit in 8 s (phase 1's patience is max(patience, 4) = 200 too), so only
    # the budget can end either phase
    student = MiniLMStudent(MiniLMConfig(pooling=pooling, warmup_epochs=400, merge=False,
                                         fit=FitConfig(epochs=200, batch_size=4, patience=200, max_minutes=budget_s / 60,
                                                       progress=False)))
    start = time.monotonic()
    report = student.fit(rows, rows)
    took = time.monotonic() - start
    assert budget_s - 2.0 <= took <= budget_s + 0.25  # it used the budget, and stayed inside it
    assert report.seconds == pytest.approx(took, abs=0.05)
    assert list(report.phases) == ["cache", "heads", "adapters", "lora"]
    assert sum(report.phases.values()) == pytest.approx(took, abs=0.1)  # the phases account for the fit
    assert report.phases["heads"] <= HEADS_BUDGET_SHARE * budget_s + 0.25  # phase 1's epochs stop at their share
    assert report.phases["lora"] > 1.0 and any(note.startswith("lora: stopped at its time budget")
                                               for note in report.notes)
    assert "cache" in report.phase_line() and "lora" in report.phase_line()

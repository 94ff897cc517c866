"""Errors raised by the trainer. Each message says what went wrong and what to do next."""

from __future__ import annotations

from foundation.errors import ToneflowError


class TrainerError(ToneflowError):
    """Base of every trainer error."""


class NoCurrentModel(TrainerError):
    """Nothing has been promoted yet, so there is no model to serve or evaluate."""

    def __init__(self, detail: str = "") -> None:
        msg = "no current model: run `toneflow train` first" + (f" ({detail})" if detail else "")
        super().__init__(msg)


class ModelNotFound(TrainerError):
    """A model name or version that the registry does not hold."""

    def __init__(self, name: str, known: list[str]) -> None:
        shown = ", ".join(known[-8:]) or "none"
        msg = f"no model {name!r} in the registry (known: {shown}); see `toneflow models list`"
        super().__init__(msg)


class CorruptModel(TrainerError):
    """A registered model whose files no longer match the hashes in its manifest."""


class GateRejected(TrainerError):
    """A candidate scored worse than the current model on the pinned test set."""

    exit_code = 3

    def __init__(self, candidate: str, cand_score: float, current: str, cur_score: float, margin: float,
                 criterion: str = "overall", higher_is_better: bool = True) -> None:
        self.candidate, self.cand_score = candidate, cand_score
        self.current, self.cur_score, self.margin = current, cur_score, margin
        self.criterion = criterion
        worse = f"< {current}'s {cur_score:.4f} - margin" if higher_is_better else f"> {current}'s {cur_score:.4f} + margin"
        msg = (f"not promoting {candidate}: {criterion} {cand_score:.4f} {worse} {margin:.4f} on the gate's test "
               f"set; use `toneflow models promote {candidate} --force` to override")
        super().__init__(msg)


class NothingNew(TrainerError):
    """An incremental run found no training rows newer than the current model's snapshot."""


class SnapshotNotFound(TrainerError):
    """A snapshot id that does not exist under <data_dir>/snapshots."""


class DataError(TrainerError):
    """Training or evaluation data that cannot be used (missing file, no rows, bad columns)."""


class TeacherUnavailable(TrainerError):
    """Augmentation needs the teacher package, which cannot be imported."""

"""The real-request benchmark: does an edit move the photo the way a human request asks?

A request set is a TSV, one request a line: ``prompt <TAB> statistic <TAB> up|down <TAB> threshold``
(lines starting with ``#`` are comments), the format of the shared MA5k-Req ``dev.tsv`` (read from
``TONEFLOW_REAL_REQUESTS_DIR`` at run time, never copied into the repository). Statistics are the
ones of ``editor.stats`` (luma, chroma, warmth, contrast, green); a threshold is an absolute change
on RGB scaled to 0..1, except for chroma, where it is a relative change.

Rule (defined here only): render the edit on the photo set (``editor.photoset``), take the mean over
the photos of the statistic's change (``LookRenders.shifts``); the request is *met* when that
change goes the asked way by at least the threshold. Direction accuracy = met / requests, overall
and per statistic; the requests that were not met are listed with what the edit did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from editor.lookcompare import LookRenders
from editor.stats import GLOBAL_STATS, NOTICEABLE
from schemas.edit import Edit
from trainer.exceptions import DataError

DEV_FILE = "dev.tsv"


@dataclass(frozen=True)
class Request:
    prompt: str
    statistic: str
    direction: str  # "up" or "down"
    threshold: float


def _builtin(prompt: str, statistic: str, direction: str) -> Request:
    """A built-in request judged by the statistic's visible-change threshold (editor/stats.py)."""
    return Request(prompt, statistic, direction, NOTICEABLE[statistic])


# A small set written for the tests and for machines without the shared files: plain requests,
# one or two per statistic and direction (not taken from any corpus).
BUILTIN: tuple[Request, ...] = (
    _builtin("make the photo brighter", "luma", "up"),
    _builtin("brighten it up a lot", "luma", "up"),
    _builtin("make it darker", "luma", "down"),
    _builtin("darken the image a bit", "luma", "down"),
    _builtin("more saturated colours", "chroma", "up"),
    _builtin("make the colours pop", "chroma", "up"),
    _builtin("less saturation please", "chroma", "down"),
    _builtin("make it warmer", "warmth", "up"),
    _builtin("cooler tones", "warmth", "down"),
    _builtin("add more contrast", "contrast", "up"),
    _builtin("reduce the contrast", "contrast", "down"),
    _builtin("black and white", "chroma", "down"),
)


def read_requests(path: str | Path) -> list[Request]:
    """Parse a request TSV; a malformed line is a DataError naming the line."""
    path = Path(path)
    if not path.exists():
        msg = f"no request file {path}: give a TSV of prompt, statistic, up|down, threshold (or `builtin`)"
        raise DataError(msg)
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 4 or parts[1] not in GLOBAL_STATS or parts[2] not in ("up", "down"):
            msg = (f"{path}:{lineno}: expected prompt<TAB>statistic<TAB>up|down<TAB>threshold with a statistic "
                   f"in {', '.join(GLOBAL_STATS)}")
            raise DataError(msg)
        try:
            threshold = float(parts[3])
        except ValueError:
            msg = f"{path}:{lineno}: threshold {parts[3]!r} is not a number"
            raise DataError(msg) from None
        out.append(Request(parts[0], parts[1], parts[2], threshold))
    if not out:
        msg = f"{path}: no requests"
        raise DataError(msg)
    return out


REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dev_file(settings: Any) -> Path | None:
    """The shared dev set (``real_requests_dir``, relative = to the repo root) when present, else None."""
    root = Path(settings.real_requests_dir).expanduser()
    path = (root if root.is_absolute() else REPO_ROOT / root) / DEV_FILE
    return path if path.exists() else None


def default_requests(settings: Any) -> tuple[str, list[Request]]:
    """(name, requests): the shared dev set when present, else the built-in set."""
    path = shared_dev_file(settings)
    return (str(path), read_requests(path)) if path else ("builtin", list(BUILTIN))


def load_named(name: str) -> list[Request]:
    return list(BUILTIN) if name == "builtin" else read_requests(name)


def set_id(requests: Sequence[Request]) -> str:
    """Identity of a request set (evals of two models compare only on the same one)."""
    digest = hashlib.sha256()
    for r in requests:
        digest.update(f"{r.prompt}\t{r.statistic}\t{r.direction}\t{r.threshold}\n".encode())
    return digest.hexdigest()[:12]


@dataclass
class RequestResult:
    set_id: str
    n: int
    met: int
    per_statistic: dict[str, dict[str, float]]
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.met / self.n if self.n else 0.0

    def as_dict(self, *, failures: int | None = 20) -> dict[str, Any]:
        shown = self.failures if failures is None else self.failures[:failures]
        return {"set": self.set_id, "n": self.n, "met": self.met, "accuracy": self.accuracy,
                "per_statistic": self.per_statistic, "failures": shown}


def met(shift: float, request: Request) -> bool:
    """The rule: the statistic moved the asked way by at least the threshold."""
    signed = shift if request.direction == "up" else -shift
    return bool(signed >= request.threshold)


def run_requests(predict: Callable[[list[str]], Sequence[Edit]], requests: Sequence[Request],
                 renders: LookRenders | None = None) -> RequestResult:
    """Ask ``predict`` for every request's edit, render, and score direction accuracy."""
    renders = renders or LookRenders()
    edits = list(predict([r.prompt for r in requests]))
    per: dict[str, dict[str, float]] = {}
    failures = []
    hits = 0
    for request, edit in zip(requests, edits, strict=True):
        shift = renders.shifts(edit)[request.statistic]
        ok = met(shift, request)
        hits += ok
        row = per.setdefault(request.statistic, {"n": 0, "met": 0})
        row["n"] += 1
        row["met"] += ok
        if not ok:
            failures.append({"prompt": request.prompt, "statistic": request.statistic, "asked": request.direction,
                             "threshold": request.threshold, "moved": round(shift, 4),
                             "edit": edit.canonical_dict()})
    for row in per.values():
        row["accuracy"] = row["met"] / row["n"]
    return RequestResult(set_id(requests), len(requests), hits, dict(sorted(per.items())), failures)


def teacher_predict() -> Callable[[list[str]], list[Edit]]:
    """The offline teacher as a ``predict`` function (a failed label counts as the empty edit)."""
    from teacher.offline import OfflineTeacher

    teacher = OfflineTeacher()

    def predict(prompts: list[str]) -> list[Edit]:
        return [label.edit or Edit() for label in teacher.label_sync(prompts)]

    return predict


def result_table(rows: Sequence[tuple[str, RequestResult]]) -> str:
    """Markdown: who, overall accuracy, then accuracy per statistic."""
    stats = sorted({s for _, r in rows for s in r.per_statistic})
    lines = ["| model | met / n | accuracy | " + " | ".join(stats) + " |", "|---|---|---|" + "---|" * len(stats)]
    for name, r in rows:
        cells = " | ".join(f"{r.per_statistic[s]['met']:.0f}/{r.per_statistic[s]['n']:.0f}"
                           if s in r.per_statistic else "-" for s in stats)
        lines.append(f"| {name} | {r.met}/{r.n} | {r.accuracy:.3f} | {cells} |")
    return "\n".join(lines)

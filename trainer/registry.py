"""The model registry: immutable versions, one ``current`` pointer that moves atomically.

Layout under ``<data_dir>/models/`` (docs/reliability.md §7)::

    versions/v000007/            immutable: weights + student files + manifest.json (written last)
    .tmp-<pid>@<host>-<uuid>/    a version being written; readers ignore it, ``gc`` removes it once
                                 its writer is gone (train and promote run gc when they start)
    evals/v000007/<testset>.json  scores of a version on a test set (the gate compares these)
    exports/v000007/             the ONNX export written on promote (fp32 + int8 + manifest.json)
    current.json                 {"version": "v000007", "history": ["v000003", ...]}
    decisions.jsonl              one line per gate decision: the criteria, who passed, what decided
    .lock                        serialises pointer moves between processes

Guarantees:
1. A version directory appears only by ``os.rename`` of a fully written temp directory whose
   ``manifest.json`` (sha256 of every file) was written and fsynced last.
2. ``current.json`` changes only by write-temp → fsync → ``os.replace`` → fsync(dir), so a crash
   at any point leaves it naming either the old or the new complete version, never a partial one.
3. ``load_student`` verifies the hashes of the version it loads; on a mismatch it falls back to the
   previous champion in the history (with a warning) instead of serving a damaged model.
4. ``promote`` moves ``current`` only when the candidate passes every criterion of the offline gate
   (``gate_criteria``) against the current model on the same test set and, when
   TONEFLOW_PROMOTE_MIN_REVIEWS is set, when reviewers rated enough of its items with enough
   mimicry (trainer/review_gate.py). ``force`` overrides both; rollback never gates. Every decision
   is appended to ``decisions.jsonl`` with the criterion that decided it.
5. Before it moves ``current``, ``promote`` stores the version's ONNX export (``store_export``) the
   same way a version is written (temp dir, manifest of hashes last, rename), so a server sees the
   new version and its export at once; ``verified_export`` checks those hashes before every load.
   A failed export never blocks a promote: the version then serves through PyTorch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation.failpoints import failpoint
from foundation.osutil import atomic_write_json, fsync_dir, pid_alive
from foundation.settings import Settings
from trainer.exceptions import CorruptModel, GateRejected, ModelNotFound, NoCurrentModel, TrainerError

if TYPE_CHECKING:
    from trainer.students.base import Student

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CURRENT = "current.json"
_VERSION_WIDTH = 6  # v000001: sorts lexically up to a million versions
_HOST = socket.gethostname().replace("-", "_")  # "-" ends the owner part of a temp dir name


def models_dir(settings: Settings) -> Path:
    return settings.data_path / "models"


def _versions(settings: Settings) -> Path:
    return models_dir(settings) / "versions"


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    root = models_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


# --- writing versions -----------------------------------------------------------------------
def stage(settings: Settings) -> Path:
    """A fresh temp directory inside the registry for a student to ``save`` into.

    Its name says which process writes it (``.tmp-<pid>@<host>-<uuid>``), so ``gc`` can remove it
    as soon as that process is gone, however recently it was written.
    """
    root = models_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".tmp-{os.getpid()}@{_HOST}-{uuid.uuid4().hex}"
    path.mkdir()
    return path


def commit(settings: Settings, staged: Path, meta: dict[str, Any]) -> str:
    """Turn a staged directory into the next immutable version; returns its name (``v000007``).

    Steps: (1) hash every file, (2) write manifest.json last and fsync it, (3) rename the directory
    to the next free version number (retrying if another trainer took it), (4) fsync the parent.
    """
    manifest = dict(meta)
    manifest["files"] = _file_hashes(staged)
    manifest.setdefault("created", time.time())
    with (staged / MANIFEST).open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    failpoint("registry.commit.before_rename")
    versions = _versions(settings)
    versions.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        existing = version_names(settings)
        number = int(existing[-1][1:]) + 1 if existing else 1
        name = f"v{number:0{_VERSION_WIDTH}d}"
        try:
            os.rename(staged, versions / name)  # fails if another process just took this number
        except OSError:
            continue
        fsync_dir(versions)
        return name
    msg = f"could not allocate a version number under {versions}"
    raise TrainerError(msg)


def _writer_alive(name: str) -> bool | None:
    """Whether the process that staged ``name`` still runs; None when that cannot be told
    (another host, e.g. another container sharing the data dir, or a name from before pids)."""
    owner, _, _ = name.removeprefix(".tmp-").rpartition("-")
    pid, at, host = owner.partition("@")
    if not at or host != _HOST or not pid.isdigit():
        return None
    return pid_alive(int(pid))


def gc(settings: Settings, older_than_s: float = 3600) -> list[str]:
    """Remove temp directories left by crashed writers: those whose writer (on this host) is gone,
    and any other older than ``older_than_s``. Called when ``train`` and ``promote`` start."""
    removed = []
    for path in models_dir(settings).glob(".tmp-*"):
        if not path.is_dir():
            continue
        alive = _writer_alive(path.name)
        if alive is False or (alive is None and time.time() - path.stat().st_mtime > older_than_s):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    if removed:
        log.warning("removed %d temp model directories left by crashed writers: %s", len(removed), ", ".join(removed))
    return removed


# --- reading --------------------------------------------------------------------------------
def version_names(settings: Settings) -> list[str]:
    versions = _versions(settings)
    if not versions.exists():
        return []
    return sorted(p.name for p in versions.iterdir() if p.name.startswith("v") and (p / MANIFEST).exists())


def manifest(settings: Settings, version: str) -> dict[str, Any]:
    path = _versions(settings) / version / MANIFEST
    if not path.exists():
        raise ModelNotFound(version, version_names(settings))
    return json.loads(path.read_text(encoding="utf-8"))


def model_path(settings: Settings, version: str) -> Path:
    manifest(settings, version)  # raises ModelNotFound
    return _versions(settings) / version


def read_current(settings: Settings) -> dict[str, Any] | None:
    path = models_dir(settings) / CURRENT
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def resolve(settings: Settings, name: str = "current") -> str:
    """A version name for ``name``: "current", "previous", "v000007" or "7"."""
    if name in ("current", "previous"):
        cur = read_current(settings)
        if cur is None:
            raise NoCurrentModel
        if name == "current":
            return str(cur["version"])
        if not cur.get("history"):
            msg = "no previous model: the current one is the first ever promoted"
            raise TrainerError(msg)
        return str(cur["history"][-1])
    if name.isdigit():
        name = f"v{int(name):0{_VERSION_WIDTH}d}"
    manifest(settings, name)
    return name


def verify(settings: Settings, version: str) -> None:
    """Raise CorruptModel unless every file matches the sha256 recorded in the manifest."""
    root = _versions(settings) / version
    expected = manifest(settings, version)["files"]
    actual = _file_hashes(root)
    if actual != expected:
        bad = sorted(k for k in set(expected) | set(actual) if expected.get(k) != actual.get(k))
        msg = f"model {version} is damaged ({', '.join(bad[:3])} differ from its manifest); roll back or retrain"
        raise CorruptModel(msg)


# --- evals and the gate -----------------------------------------------------------------------
def record_eval(settings: Settings, version: str, test_set: str, result: dict[str, Any]) -> None:
    atomic_write_json(models_dir(settings) / "evals" / version / f"{test_set}.json", result)


def read_eval(settings: Settings, version: str, test_set: str) -> dict[str, Any] | None:
    path = models_dir(settings) / "evals" / version / f"{test_set}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _move_current(settings: Settings, version: str, history: list[str], action: str) -> None:
    atomic_write_json(models_dir(settings) / CURRENT, {
        "version": version, "history": history[-50:], "action": action, "at": time.time()},
        crash_point="registry.current.before_replace")
    _CACHE.clear()


@dataclass(frozen=True)
class Criterion:
    """One check of the offline gate: the candidate may not be worse than the champion by > margin."""

    name: str
    candidate: float | None
    champion: float | None
    margin: float
    higher_is_better: bool

    @property
    def passed(self) -> bool | None:
        """None when a side lacks the number (an eval from before it existed, another request set)."""
        if self.candidate is None or self.champion is None:
            return None
        if self.higher_is_better:
            return self.candidate >= self.champion - self.margin
        return self.candidate <= self.champion + self.margin

    def row(self) -> dict[str, Any]:
        return {"criterion": self.name, "candidate": self.candidate, "champion": self.champion,
                "margin": self.margin, "passed": self.passed}


def _get(record: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def gate_criteria(cand_eval: dict[str, Any], cur_eval: dict[str, Any], settings: Settings,
                  margin: float | None = None) -> list[Criterion]:
    """The offline gate, in the order it is judged:

    1. ``overall``: the paper's parameter-space overall on the intent-disjoint test set (both look
       subsets together; no group of it is in training), higher is better, ``promote_margin``;
    2. ``rendered_delta_e``: mean CIEDE2000 ΔE between renders of prediction and reference on the
       photo set, lower is better, ``promote_delta_e_margin``;
    3. ``request_accuracy``: real-request direction accuracy, higher is better,
       ``promote_request_margin``; compared only when both were measured on the same request set.
    """
    margin = settings.promote_margin if margin is None else margin
    same_set = _get(cand_eval, "requests", "set") == _get(cur_eval, "requests", "set")
    return [
        Criterion("overall", cand_eval.get("overall"), cur_eval.get("overall"), margin, True),
        Criterion("rendered_delta_e", _get(cand_eval, "rendered", "All", "delta_e"),
                  _get(cur_eval, "rendered", "All", "delta_e"), settings.promote_delta_e_margin, False),
        Criterion("request_accuracy", _get(cand_eval, "requests", "accuracy") if same_set else None,
                  _get(cur_eval, "requests", "accuracy") if same_set else None,
                  settings.promote_request_margin, True),
    ]


def log_decision(settings: Settings, record: dict[str, Any]) -> None:
    """Append one gate decision to ``decisions.jsonl`` (fsynced: the log is the audit trail)."""
    path = models_dir(settings) / "decisions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"at": time.time(), **record}, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def decisions(settings: Settings, version: str | None = None) -> list[dict[str, Any]]:
    """Gate decisions, oldest first (only those about ``version`` when given)."""
    path = models_dir(settings) / "decisions.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if version is None or r.get("candidate") == version]


def promote(settings: Settings, version: str, *, test_set: str | None = None, margin: float | None = None,
            force: bool = False) -> dict[str, Any]:
    """Make ``version`` current if it passes the gate on ``test_set``; returns what happened.

    The gate reads both models' recorded evals on the same test set (``record_eval``); a missing
    eval for the candidate is an error (evaluate it first), and so is a missing eval for the
    current model unless ``force``.
    """
    gc(settings)
    version = resolve(settings, version)
    margin = settings.promote_margin if margin is None else margin
    criteria: list[Any] = []
    with _locked(settings):
        cur = read_current(settings)
        if cur is not None and cur["version"] == version:
            return {"promoted": False, "version": version, "reason": "already current"}
        if cur is not None and not force:
            if test_set is None:
                msg = "promote needs the test set to compare on (or --force)"
                raise TrainerError(msg)
            cand_eval, cur_eval = read_eval(settings, version, test_set), read_eval(settings, cur["version"], test_set)
            if cand_eval is None or cur_eval is None:
                who = version if cand_eval is None else cur["version"]
                msg = f"{who} has not been evaluated on test set {test_set}: run `toneflow eval --model {who}` first"
                raise TrainerError(msg)
            criteria = gate_criteria(cand_eval, cur_eval, settings, margin)
            failed = next((c for c in criteria if c.passed is False), None)
            if failed is not None:
                log_decision(settings, {"candidate": version, "champion": cur["version"], "test_set": test_set,
                                        "promoted": False, "decided_by": failed.name,
                                        "criteria": [c.row() for c in criteria]})
                assert failed.candidate is not None and failed.champion is not None
                raise GateRejected(version, failed.candidate, cur["version"], failed.champion, failed.margin,
                                   failed.name, failed.higher_is_better)
        if not force:
            from trainer.review_gate import ReviewsRequired, check_reviews

            try:
                check_reviews(settings, version)  # people's verdict (toneflow ui, Review); off unless set
            except ReviewsRequired as err:
                log_decision(settings, {"candidate": version, "champion": cur["version"] if cur else None,
                                        "test_set": test_set, "promoted": False, "decided_by": "reviews",
                                        "reason": str(err), "criteria": [c.row() for c in criteria]})
                raise
        decided_by = "forced" if force and cur is not None else "first model" if cur is None else "all criteria passed"
        log_decision(settings, {"candidate": version, "champion": cur["version"] if cur else None,
                                "test_set": test_set, "promoted": True, "decided_by": decided_by,
                                "criteria": [c.row() for c in criteria]})
        export = _export_on_promote(settings, version)  # before the move: servers load it with the version
        history = ([*cur["history"], cur["version"]] if cur is not None else [])
        _move_current(settings, version, history, "promote")
    log.info("promoted %s (previous: %s)", version, cur["version"] if cur else None)
    return {"promoted": True, "version": version, "previous": cur["version"] if cur else None, "export": export}


def rollback(settings: Settings, to: str | None = None) -> dict[str, Any]:
    """Point ``current`` back at the previous champion (or at ``to``); never gated."""
    with _locked(settings):
        cur = read_current(settings)
        if cur is None:
            raise NoCurrentModel
        history = list(cur.get("history", []))
        if to is None:
            if not history:
                msg = "nothing to roll back to: the current model is the first ever promoted"
                raise TrainerError(msg)
            target = history.pop()
        else:
            target = resolve(settings, to)
            history = [v for v in history if v != target] + [cur["version"]]
        _move_current(settings, target, history, "rollback")
    return {"version": target, "previous": cur["version"]}


# --- ONNX exports (written on promote, served by serving.ort_student) ----------------------------
def export_dir(settings: Settings, version: str) -> Path:
    return models_dir(settings) / "exports" / version


def store_export(settings: Settings, version: str) -> dict[str, Any] | None:
    """Export ``version`` to ONNX (fp32 + int8) beside it, once; returns the export's manifest.

    None for a student kind without an export. The version is hash-verified before it is loaded, so a
    damaged model is never exported (CorruptModel). Idempotent: an existing export is kept.
    """
    from trainer.onnx_export import export_student, supports
    from trainer.students import student_class

    target = export_dir(settings, version)
    if (target / MANIFEST).exists():
        return json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    kind = manifest(settings, version)["student"]
    if not supports(kind):
        return None
    verify(settings, version)
    staged = stage(settings)
    try:
        meta = export_student(student_class(kind).load(model_path(settings, version)), staged)
        done = {"version": version, "export": meta, "files": _file_hashes(staged), "created": time.time()}
        with (staged / MANIFEST).open("w", encoding="utf-8") as fh:
            json.dump(done, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staged, target)
        except OSError:
            if not (target / MANIFEST).exists():
                raise
            return json.loads((target / MANIFEST).read_text(encoding="utf-8"))  # another process stored it first
        fsync_dir(target.parent)
        return done
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def verified_export(settings: Settings, version: str) -> Path | None:
    """The directory of ``version``'s ONNX export, hash-verified; None when it has none.

    Raises CorruptModel when a file differs from the export's manifest.
    """
    root = export_dir(settings, version)
    if not (root / MANIFEST).exists():
        return None
    expected = json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"]
    actual = _file_hashes(root)
    if actual != expected:
        bad = sorted(k for k in set(expected) | set(actual) if expected.get(k) != actual.get(k))
        msg = (f"the ONNX export of {version} is damaged ({', '.join(bad[:3])} differ from its manifest); "
               f"delete {root} and promote again to re-export it")
        raise CorruptModel(msg)
    return root


def _export_on_promote(settings: Settings, version: str) -> str:
    """Store the export for a promote; any failure is logged and the version serves through PyTorch."""
    if not settings.registry_export_onnx:
        return "off (TONEFLOW_REGISTRY_EXPORT_ONNX=false)"
    try:
        done = store_export(settings, version)
    except Exception as err:  # noqa: BLE001 - an export problem must never block a promote
        log.warning("no ONNX export for %s (%s: %s); it serves through PyTorch", version, type(err).__name__, err)
        return f"failed: {type(err).__name__}: {err}"
    return "stored" if done is not None else "none for this student kind"


@dataclass(frozen=True)
class ModelInfo:
    version: str
    student: str
    created: float
    snapshot: str | None
    parent: str | None
    overall: float | None
    current: bool
    delta_e: float | None = None
    request_accuracy: float | None = None
    gate: str | None = None  # the last gate decision about this version: "promoted (...)" / "rejected by ..."


def list_models(settings: Settings) -> list[ModelInfo]:
    cur = read_current(settings)
    last: dict[str, dict[str, Any]] = {d["candidate"]: d for d in decisions(settings) if d.get("candidate")}
    out = []
    for name in version_names(settings):
        m = manifest(settings, name)
        metrics = m.get("metrics") or {}
        d = last.get(name)
        gate = None if d is None else (f"promoted ({d['decided_by']})" if d["promoted"]
                                       else f"rejected by {d['decided_by']}")
        out.append(ModelInfo(name, m.get("student", "?"), m.get("created", 0.0), m.get("snapshot"),
                             m.get("parent"), metrics.get("overall"), cur is not None and cur["version"] == name,
                             _get(metrics, "rendered", "All", "delta_e"), _get(metrics, "requests", "accuracy"), gate))
    return out


# --- loading (hot reload) -------------------------------------------------------------------------
_CACHE: dict[tuple[str, str], Student] = {}


def load_student(settings: Settings, name: str = "current") -> Student:
    """The student for ``name`` ("current", "previous" or a version), verified and cached.

    Cheap to call per request: versions are immutable, so a loaded student is cached by version
    and only ``current.json`` (a few bytes) is read again; a promote is picked up on the next call.
    """
    version = resolve(settings, name)
    key = (str(settings.data_path), version)
    if key in _CACHE:
        return _CACHE[key]
    try:
        verify(settings, version)
    except CorruptModel:
        cur = read_current(settings) or {}
        if name != "current" or not cur.get("history"):
            raise
        fallback = cur["history"][-1]
        log.warning("current model %s is damaged; serving the previous champion %s", version, fallback)
        _CACHE[key] = load_student(settings, fallback)  # remember, so requests do not re-hash it
        return _CACHE[key]
    from trainer.students import student_class

    m = manifest(settings, version)
    student = student_class(m["student"]).load(_versions(settings) / version)
    student.version = version
    _CACHE[key] = student
    return student

"""The model registry: immutable versions, one ``current`` pointer that moves atomically.

Layout under ``<data_dir>/models/`` (reliability.md §8)::

    versions/v000007/            immutable: weights + student files + manifest.json (written last)
    .tmp-<pid>@<host>-<uuid>/    a version being written; readers ignore it, ``gc`` removes it once
                                 its writer is gone (train and promote run gc when they start)
    evals/v000007/<testset>.json  scores of a version on a test set (the gate compares these)
    current.json                 {"version": "v000007", "history": ["v000003", ...]}
    .lock                        serialises pointer moves between processes

Guarantees:
1. A version directory appears only by ``os.rename`` of a fully written temp directory whose
   ``manifest.json`` (sha256 of every file) was written and fsynced last.
2. ``current.json`` changes only by write-temp → fsync → ``os.replace`` → fsync(dir), so a crash
   at any point leaves it naming either the old or the new complete version, never a partial one.
3. ``load_student`` verifies the hashes of the version it loads; on a mismatch it falls back to the
   previous champion in the history (with a warning) instead of serving a damaged model.
4. ``promote`` moves ``current`` only when the candidate's overall on the test set is not worse than
   the current model's by more than the margin (``force`` overrides; rollback never gates).
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
            if cand_eval["overall"] < cur_eval["overall"] - margin:
                raise GateRejected(version, cand_eval["overall"], cur["version"], cur_eval["overall"], margin)
        history = ([*cur["history"], cur["version"]] if cur is not None else [])
        _move_current(settings, version, history, "promote")
    log.info("promoted %s (previous: %s)", version, cur["version"] if cur else None)
    return {"promoted": True, "version": version, "previous": cur["version"] if cur else None}


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


@dataclass(frozen=True)
class ModelInfo:
    version: str
    student: str
    created: float
    snapshot: str | None
    parent: str | None
    overall: float | None
    current: bool


def list_models(settings: Settings) -> list[ModelInfo]:
    cur = read_current(settings)
    out = []
    for name in version_names(settings):
        m = manifest(settings, name)
        out.append(ModelInfo(name, m.get("student", "?"), m.get("created", 0.0), m.get("snapshot"),
                             m.get("parent"), (m.get("metrics") or {}).get("overall"),
                             cur is not None and cur["version"] == name))
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

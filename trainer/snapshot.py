"""Immutable, content-hashed training data snapshots with deterministic splits.

``<data_dir>/snapshots/<id>/`` holds ``train.parquet``, ``validation.parquet``, ``test.parquet``
and ``manifest.json`` (label policy, source, per-file row counts and sha256, split fractions).
The id is a hash of the content, so the same data under the same policy is the same snapshot;
a snapshot directory appears only by renaming a fully written temp directory.

Splits: a row's split is a hash of its *intent group* (``trainer.grouping``: all surface forms of
one intent, derived from the prompts), so one intent with all its wordings, modifiers and typos
never lands in two splits, and a group's split does not change as data grows. Augmented rows only
ever go to train, and are dropped if their group (or the group of the prompt they paraphrase)
belongs to validation/test. A pinned benchmark (``pin``) freezes one snapshot's test split as *the*
test set of the gate; every group with a pinned prompt is kept out of every later training split.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from foundation.osutil import atomic_write_json, fsync_dir
from foundation.settings import Settings
from schemas.text import normalise_prompt
from trainer.data import Example
from trainer.exceptions import DataError, SnapshotNotFound
from trainer.grouping import GROUPING_VERSION, IntentGroups, Split, bucket_split, intent_key

SPLITS: tuple[Split, ...] = ("train", "validation", "test")


def split_of(prompt_norm: str, test_fraction: float, val_fraction: float) -> Split:
    """The split of a prompt judged alone (its intent key's hash); ``create`` uses the groups of the
    whole data set, which agree with this except where a typo joins two keys."""
    return bucket_split(intent_key(prompt_norm), test_fraction, val_fraction)


def snapshots_dir(settings: Settings) -> Path:
    return settings.data_path / "snapshots"


@dataclass(frozen=True)
class Snapshot:
    id: str
    path: Path
    manifest: dict[str, Any]

    def rows(self, split: Split) -> list[Example]:
        import pyarrow.parquet as pq

        names = {f.name for f in fields(Example)}
        table = pq.read_table(self.path / f"{split}.parquet")
        return [Example(**{k: v for k, v in rec.items() if k in names}) for rec in table.to_pylist()]

    @property
    def test_set_id(self) -> str:
        """Identity of this snapshot's test split (what evals are recorded under)."""
        return str(self.manifest["files"]["test.parquet"]["sha256"][:16])


_SCHEMA_COLUMNS = [f.name for f in fields(Example)]


def _write_parquet(path: Path, rows: list[Example]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {c: [getattr(r, c) for r in rows] for c in _SCHEMA_COLUMNS}
    schema = pa.schema([("id", pa.string()), ("prompt", pa.string()), ("edit", pa.string()),
                        ("prompt_norm", pa.string()), ("exporters", pa.int64()), ("label_source", pa.string()),
                        ("augmented", pa.bool_()), ("origin", pa.string())])
    pq.write_table(pa.table(cols, schema=schema), path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def create(settings: Settings, rows: list[Example], *, policy: str, source: dict[str, Any],
           augmented: list[Example] | None = None, parent: str | None = None) -> Snapshot:
    """Split ``rows`` (+ train-only ``augmented`` rows) and freeze them as a snapshot."""
    if not rows:
        msg = "no training rows to snapshot"
        raise DataError(msg)
    pinned_norms = [r.prompt_norm for r in pinned_rows(settings)]
    groups = IntentGroups([r.prompt_norm for r in rows] + pinned_norms)
    pinned_groups = {groups.label(n) for n in pinned_norms}
    split_rows: dict[str, list[Example]] = {s: [] for s in SPLITS}
    dropped = 0
    for row in rows:
        split = groups.split(row.prompt_norm, settings.test_fraction, settings.val_fraction)
        if split != "test" and groups.label(row.prompt_norm) in pinned_groups:
            dropped += 1  # a pinned benchmark intent must never be trained on
            continue
        split_rows[split].append(row)
    held_out = {groups.label(r.prompt_norm) for s in ("validation", "test") for r in split_rows[s]} | pinned_groups
    aug = [r for r in (augmented or []) if groups.label(r.prompt_norm) not in held_out
           and groups.label(normalise_prompt(r.origin or r.prompt)) not in held_out]
    split_rows["train"].extend(aug)
    for split in SPLITS:
        split_rows[split].sort(key=lambda r: (r.prompt_norm, r.id))
    digest = hashlib.sha256(json.dumps([policy, settings.test_fraction, settings.val_fraction,
                                        GROUPING_VERSION]).encode())
    for split in SPLITS:
        for r in split_rows[split]:
            digest.update(json.dumps([split, *(getattr(r, c) for c in _SCHEMA_COLUMNS)]).encode())
    snap_id = f"s-{digest.hexdigest()[:12]}"
    final = snapshots_dir(settings) / snap_id
    if (final / "manifest.json").exists():
        return load(settings, snap_id)  # identical content: snapshots are immutable and shared
    tmp = snapshots_dir(settings) / f".tmp-{snap_id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    files = {}
    for split in SPLITS:
        path = tmp / f"{split}.parquet"
        _write_parquet(path, split_rows[split])
        files[path.name] = {"rows": len(split_rows[split]), "sha256": _sha256(path),
                            "augmented": sum(r.augmented for r in split_rows[split])}
    manifest = {"id": snap_id, "created": time.time(), "policy": policy, "source": source, "parent": parent,
                "files": files, "test_fraction": settings.test_fraction, "val_fraction": settings.val_fraction,
                "dropped_pinned": dropped, "augmented_dropped": len(augmented or []) - len(aug),
                "grouping": {"version": GROUPING_VERSION, "groups": groups.count,
                             "per_split": {s: len({groups.label(r.prompt_norm) for r in split_rows[s]}) for s in SPLITS}},
                "pinned": (read_pin(settings) or {}).get("snapshot")}
    atomic_write_json(tmp / "manifest.json", manifest)
    try:
        os.rename(tmp, final)
    except OSError:  # another process wrote the same content first
        shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(final.parent)
    return load(settings, snap_id)


def list_ids(settings: Settings) -> list[str]:
    root = snapshots_dir(settings)
    if not root.exists():
        return []
    found = [p for p in root.iterdir() if p.name.startswith("s-") and (p / "manifest.json").exists()]
    return [p.name for p in sorted(found, key=lambda p: json.loads((p / "manifest.json").read_text())["created"])]


def load(settings: Settings, snap_id: str = "latest") -> Snapshot:
    """A snapshot by id ("latest" = the newest); raises SnapshotNotFound with the known ids."""
    ids = list_ids(settings)
    if snap_id == "latest":
        if not ids:
            msg = "no snapshots yet: run `toneflow dataset snapshot` (or `toneflow train --input FILE`)"
            raise SnapshotNotFound(msg)
        snap_id = ids[-1]
    path = snapshots_dir(settings) / snap_id
    if not (path / "manifest.json").exists():
        msg = f"no snapshot {snap_id!r}; known: {', '.join(ids[-5:]) or 'none'} (`toneflow dataset list`)"
        raise SnapshotNotFound(msg)
    return Snapshot(snap_id, path, json.loads((path / "manifest.json").read_text(encoding="utf-8")))


def verify(snapshot: Snapshot) -> None:
    for name, info in snapshot.manifest["files"].items():
        if _sha256(snapshot.path / name) != info["sha256"]:
            msg = f"snapshot {snapshot.id}: {name} does not match its manifest hash; recreate the snapshot"
            raise DataError(msg)


def pin(settings: Settings, snap_id: str) -> dict[str, Any]:
    """Freeze ``snap_id``'s test split as the benchmark every promotion is judged on."""
    snap = load(settings, snap_id)
    record = {"snapshot": snap.id, "test_set": snap.test_set_id, "rows": snap.manifest["files"]["test.parquet"]["rows"],
              "at": time.time()}
    atomic_write_json(snapshots_dir(settings) / "pinned.json", record)
    return record


def read_pin(settings: Settings) -> dict[str, Any] | None:
    path = snapshots_dir(settings) / "pinned.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def pinned_rows(settings: Settings) -> list[Example]:
    pin_record = read_pin(settings)
    return load(settings, pin_record["snapshot"]).rows("test") if pin_record else []


def benchmark_set(settings: Settings, snapshot: Snapshot) -> tuple[str, list[Example]]:
    """The gate's test set: the pinned benchmark if there is one, else this snapshot's test split."""
    pin_record = read_pin(settings)
    if pin_record:
        return pin_record["test_set"], load(settings, pin_record["snapshot"]).rows("test")
    return snapshot.test_set_id, snapshot.rows("test")

"""The join's per-project state, typed, and the index that finds expired projects without a scan.

``JoinState`` is one project's value in the join table (``streams/join.py``): its labelled prompts
and exports (each decoded once, when its record arrived, and kept with the record's log position),
which labels already produced an accepted example, the partition it lives in and when it was last
touched. The changelog carries it as compact JSON bytes written by ``to_bytes``; ``from_bytes``
also reads the untyped dict the join wrote before this model existed, so a changelog written by an
older worker recovers into the same state.

``ExpiryIndex`` keeps, per partition, project keys in the order they were last touched. Touch times
come from the wall clock and only grow, so the oldest entry is always first and a TTL sweep pops
from the front until it meets a live one: the cost is the number of expired projects, not the
table's size.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# ``COMPACT_JSON.encode`` of a str, without the encoder's dispatch: the same C escaper (UTF-8 kept).
from json.encoder import encode_basestring as _json_text

from pydantic import TypeAdapter

from schemas.edit import COMPACT_JSON
from schemas.events import ExportEvent, LabelEvent, SourceRef, to_json_bytes


@dataclass(slots=True)
class LabelEntry:
    event: LabelEvent
    src: SourceRef | None = None
    # The entry's changelog JSON, made once (an entry never changes; a project's state is written
    # on every batch that touches it). Not part of the state: not compared, not serialised.
    wire: bytes | None = field(default=None, compare=False, repr=False)

    def to_json(self, event_json: bytes | None = None) -> bytes:
        return _cached_json(self, event_json)


@dataclass(slots=True)
class ExportEntry:
    event: ExportEvent
    src: SourceRef | None = None
    wire: bytes | None = field(default=None, compare=False, repr=False)

    def to_json(self, event_json: bytes | None = None) -> bytes:
        return _cached_json(self, event_json)


def _cached_json(entry: LabelEntry | ExportEntry, event_json: bytes | None) -> bytes:
    if entry.wire is None:
        entry.wire = _entry_json(entry.event, entry.src, event_json)
    return entry.wire


def _entry_json(event: LabelEvent | ExportEvent, src: SourceRef | None, event_json: bytes | None) -> bytes:
    """``{"event": ..., "src": ...}`` as ``_CODEC`` writes an entry (``None`` dropped)."""
    body = event_json if event_json is not None else to_json_bytes(event)
    if src is None:
        return b'{"event":' + body + b"}"
    return b'{"event":' + body + b',"src":' + source_json(src) + b"}"


def source_json(src: SourceRef) -> bytes:
    """``to_json_bytes(src)``, written directly: a SourceRef is a topic name and two integers, and
    pydantic's serialiser was a microsecond or two of every join record's changelog entry.
    tests/test_streams_join_state.py pins it to pydantic's bytes on generated SourceRefs."""
    values = src.__dict__
    topic, partition, offset = values["topic"], values["partition"], values["offset"]
    if type(topic) is not str or type(partition) is not int or type(offset) is not int:
        return to_json_bytes(src)  # a constructed one holding something else: pydantic decides
    return f'{{"topic":{_json_text(topic)},"partition":{partition},"offset":{offset}}}'.encode()


@dataclass(slots=True)
class JoinState:
    """One project's join state (the join table's value for its project_id).

    A dataclass, not a pydantic model: the join builds and changes these on every record, and the
    events inside were validated when their records were decoded; pydantic (``_CODEC``) only
    serialises a state for the changelog and validates one read back from it.
    """

    partition: int  # the partition of the project's records (and of its changelog entry)
    touched: float  # unix seconds of the last record that changed it; the TTL counts from here
    labels: dict[str, LabelEntry] = field(default_factory=dict)  # event_id -> labelled prompt
    exports: dict[str, ExportEntry] = field(default_factory=dict)  # event_id -> export
    emitted: set[str] = field(default_factory=set)  # label event_ids that produced an accepted example

    @classmethod
    def empty(cls, partition: int, now: float) -> JoinState:
        return cls(partition=partition, touched=now)

    def add_label(self, label: LabelEvent, src: SourceRef | None, wire: bytes | None = None) -> None:
        """``wire``: the label's record value when it is exactly ``to_json_bytes(label)`` (a
        record this worker produced, ``streams.codec.decode_own``), reused for the changelog."""
        entry = LabelEntry(label, src)
        if wire is not None:
            entry.to_json(wire)
        self.labels[label.event_id] = entry

    def add_export(self, export: ExportEvent, src: SourceRef | None) -> None:
        self.exports[export.event_id] = ExportEntry(export, src)

    def to_bytes(self) -> bytes:
        """The changelog value: compact JSON, ``None`` fields dropped (as on the topics).

        Put together from each entry's JSON, made once per entry, instead of serialising every
        event of the project again on each batch that changes it (that was a tenth of the join's
        time); ``from_bytes`` reads it as it read ``_CODEC.dump_json(state)``, which it equals.
        """
        labels = b",".join(_key(k) + b":" + e.to_json() for k, e in self.labels.items())
        exports = b",".join(_key(k) + b":" + e.to_json() for k, e in self.exports.items())
        return b"".join((b'{"partition":', str(self.partition).encode(), b',"touched":', _number(self.touched),
                         b',"labels":{', labels, b'},"exports":{', exports, b'},"emitted":',
                         COMPACT_JSON.encode(sorted(self.emitted)).encode(), b"}"))

    @classmethod
    def from_bytes(cls, data: bytes) -> JoinState:
        obj = json.loads(data)
        if "p" in obj:  # the untyped dict of older workers: {"p", "t", "labels", "exports", "emitted"}
            obj = {"partition": obj["p"], "touched": obj.get("t", 0.0), "emitted": obj.get("emitted", []),
                   "labels": {k: {"event": v["e"], "src": v["src"]} for k, v in obj["labels"].items()},
                   "exports": {k: {"event": v["e"], "src": v["src"]} for k, v in obj["exports"].items()}}
        return _CODEC.validate_python(obj)


_CODEC: TypeAdapter[JoinState] = TypeAdapter(JoinState)


def _key(text: str) -> bytes:
    return _json_text(text).encode()


def _number(value: float) -> bytes:
    return _CODEC_FLOAT.dump_json(value)


_CODEC_FLOAT: TypeAdapter[float] = TypeAdapter(float)


class ExpiryIndex:
    """partition -> project keys, least recently touched first."""

    def __init__(self) -> None:
        self._by_partition: dict[int, OrderedDict[str, float]] = {}

    def touch(self, partition: int, key: str, when: float) -> None:
        keys = self._by_partition.setdefault(partition, OrderedDict())
        keys[key] = when
        keys.move_to_end(key)

    def forget(self, partition: int, key: str) -> None:
        keys = self._by_partition.get(partition)
        if keys is not None:
            keys.pop(key, None)

    def expired(self, partition: int, older_than: float) -> Iterator[str]:
        """Pop and yield the keys last touched before ``older_than``, oldest first."""
        keys = self._by_partition.get(partition)
        while keys:
            key, when = next(iter(keys.items()))
            if when >= older_than:
                return
            del keys[key]
            yield key

    def rebuild(self, states: Iterable[tuple[str, JoinState]]) -> None:
        """Start over from a table's content (after recovery or a rebalance), oldest first."""
        self._by_partition = {}
        for key, state in sorted(states, key=lambda item: item[1].touched):
            self.touch(state.partition, key, state.touched)

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._by_partition.values())

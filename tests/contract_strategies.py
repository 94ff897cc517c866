"""Hypothesis strategies derived from the event contracts (schemas/events.py, schemas/edit.py).

Nothing here lists a model's fields: ``records(model)`` walks ``model_fields`` (annotation, the
``annotated_types`` bounds in the field's metadata, the timestamp bounds in its JSON-schema extra),
so a field added to a contract is generated at once, and a field of a type this walk does not know
fails loudly (``TypeError``) instead of being left out.

Three kinds of value, all as the bytes a producer would put on a topic:

* ``valid_bytes(model)``: records the contract accepts, leaning on the extremes it allows:
  timestamps at both bounds in odd offsets (-23:59, +14:00, +05:45), integers at their bounds,
  floats at -0.0, subnormals and the largest finite double, strings with NUL, control, RTL and
  astral characters at their maximum length, empty and long lists;
* ``near_valid_bytes(model)``: one of those with one thing wrong: a wrong type or an out-of-range
  value in one field (year 1 and 9999, 2**63 and beyond, NaN/±Infinity, lone surrogates, strings
  one past their bound), a missing or unknown field, another schema version, truncated JSON,
  invalid UTF-8, a BOM, an oversized record, JSON that is not an object;
* ``wire_bytes(model)``: either, or junk (empty, None, deep nesting, NUL floods).

``corpus`` draws records across topics with duplicated event_ids of different content, and labels
and exports that share project ids with the prompts, so the join has something to join.
"""

from __future__ import annotations

import functools
import json
import os
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import annotated_types
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from schemas.edit import Edit
from schemas.events import TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_PROMPTS, ExportEvent, LabelEvent, PromptEvent, ServedBy

# The tests' coverage floors ("saw at least 10 valid events") must not fail CI on an unlucky seed, so
# by default every run draws the same examples (derandomized); HYPOTHESIS_PROFILE=explore draws new
# ones each run, for looking for new failures locally.
settings.register_profile("toneflow", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "toneflow"))
# No example database in the repository or anywhere shared.
FAST = settings(database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                       HealthCheck.filter_too_much])

RECORD_LIMIT = 64 * 1024  # streams/codec.py MAX_RECORD_BYTES: an oversized record is built past it
PRODUCIBLE = 4 * RECORD_LIMIT  # well under the broker's message limit (1 MB): larger values never reach a worker
UNBOUNDED_TEXT = 300      # strings without a max_length: long enough to matter, short enough to be fast
LIST_MAX = 12

# Characters that broke encoders, logs or terminals before: NUL and C0/C1 controls, line and
# paragraph separators, bidi overrides (RTL), BOM, zero-width, combining marks, astral emoji,
# JSON's own metacharacters.
HOSTILE_CHARS = ["\x00", "\x01", "\x1b", "\x1f", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\u200f", "\u061c",
                 "\ufeff", "\u200b", "\u0301", "\ufffd", "\U0001f600", "\U0010ffff", "\\", '"', "/", "'", "\t", "\n",
                 "ا", "é", "ß", "ﬁ"]
_chars = st.one_of(st.sampled_from(HOSTILE_CHARS), st.characters(codec="utf-8"), st.sampled_from("golden hour warm moody"))

# Offsets at the ends of what RFC 3339 allows, and the odd ones real zones use.
OFFSETS = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
           timezone(timedelta(hours=23, minutes=59)), timezone(-timedelta(hours=23, minutes=59)),
           timezone(timedelta(hours=5, minutes=45)), timezone(-timedelta(minutes=1)), timezone(timedelta(hours=-3, minutes=-30))]

# Values no contract field accepts where it stands, whatever its type (one replaces one field).
OUT_OF_CONTRACT: list[Any] = [
    2**63, 2**64, -(2**63) - 1, 10**30, -1, -(10**20), float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324,
    -0.0, "", "x" * 1000, "\ud800", "a\udfffb", "\x00" * 64, "9999-12-31T23:59:59.999999-23:59",
    "0001-01-01T00:00:00+23:59", "1969-12-31T23:59:59Z", "3000-01-01T00:00:00Z", "2026-02-30T10:00:00Z",
    "2026-11-25T10:00:00", "yesterday", None, True, False, [], {}, [[[[]]]], {"a": {"b": {}}}, 1.5, 0, "1",
]


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if isinstance(item, annotated_types.BaseMetadata) and hasattr(item, name):
                out[name] = getattr(item, name)
    return out


def _ints(b: dict[str, Any]) -> st.SearchStrategy[int]:
    lo = b.get("ge", b["gt"] + 1 if "gt" in b else -(2**63))
    hi = b.get("le", b["lt"] - 1 if "lt" in b else 2**63 - 1)
    edges = sorted({v for v in (lo, hi, lo + 1, hi - 1, 0, 1, -1, 2**31 - 1, 2**32, 2**53 + 1) if lo <= v <= hi})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _floats(b: dict[str, Any]) -> st.SearchStrategy[float]:
    lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
    edges = [v for v in (0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1e-300, 0.5, 1.0, 1e15, 1.7976931348623157e308,
                         -1.7976931348623157e308, -5e-324)
             if (lo is None or v >= lo) and (hi is None or v <= hi) and ("gt" not in b or v > b["gt"])
             and ("lt" not in b or v < b["lt"])]
    finite = st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False,
                       exclude_min="gt" in b, exclude_max="lt" in b)
    return st.one_of(st.sampled_from(edges), finite) if edges else finite


def _texts(b: dict[str, Any]) -> st.SearchStrategy[str]:
    lo, hi = b.get("min_length", 0), b.get("max_length")
    cap = hi if hi is not None else UNBOUNDED_TEXT
    short = st.text(_chars, min_size=lo, max_size=min(cap, 24))
    # A string exactly at its bound, of the characters that grow most when escaped.
    full = st.text(st.sampled_from(HOSTILE_CHARS), min_size=cap, max_size=cap) if cap >= lo else short
    options = [short] * 12 + [full, full, st.text(_chars, min_size=lo, max_size=cap)]
    if hi is None:  # a string the contract does not bound: one that brings its record to the record limit
        escaped = {"x": 1, "é": 2, "\x00": 6}  # bytes per character in a producer's JSON
        options.append(st.builds(lambda c, n: c * (n // escaped[c]), st.sampled_from(list(escaped)),
                                 st.integers(RECORD_LIMIT - 1500, RECORD_LIMIT - 300)))
    return st.one_of(*options)


def _timestamps(extra: Any) -> st.SearchStrategy[str]:
    extra = extra if isinstance(extra, dict) else {}
    lo = datetime.fromisoformat(extra["formatMinimum"]) if "formatMinimum" in extra else datetime.min.replace(tzinfo=UTC)
    hi = (datetime.fromisoformat(extra["formatExclusiveMaximum"]) - timedelta(microseconds=1)
          if "formatExclusiveMaximum" in extra else datetime.max.replace(tzinfo=UTC))
    lo_utc, hi_utc = lo.astimezone(UTC).replace(tzinfo=None), hi.astimezone(UTC).replace(tzinfo=None)
    instants = st.one_of(st.sampled_from([lo_utc, hi_utc, lo_utc + timedelta(microseconds=1),
                                          hi_utc - timedelta(microseconds=1), datetime(2026, 11, 25, 10)]),
                         st.datetimes(min_value=lo_utc, max_value=hi_utc))

    def spell(instant: datetime, tz: timezone, zulu: bool) -> str:
        local = instant.replace(tzinfo=UTC).astimezone(tz)
        text = local.isoformat()
        return text.replace("+00:00", "Z") if zulu else text

    return st.builds(spell, instants, st.sampled_from(OFFSETS), st.booleans())


def values(annotation: Any, metadata: list[Any] | None = None, extra: Any = None) -> st.SearchStrategy[Any]:
    """JSON-ready values the contract accepts for a field of this annotation and these bounds."""
    metadata = metadata or []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *more = typing.get_args(annotation)
        extra_meta = [m for info in more if isinstance(info, FieldInfo) for m in info.metadata]
        return values(base, [*metadata, *extra_meta, *(m for m in more if not isinstance(m, FieldInfo))], extra)
    if origin in (typing.Union, types.UnionType):
        # An optional field is often left out already (records); when present it is mostly a value.
        present = [values(a, metadata, extra) for a in typing.get_args(annotation) if a is not type(None)]
        return st.one_of(*present, *present, *present, st.none()) if len(present) < len(typing.get_args(annotation)) \
            else st.one_of(*present)
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return st.lists(values(item), max_size=LIST_MAX)
    if origin is dict:
        key, item = typing.get_args(annotation)
        return st.dictionaries(values(key), values(item), max_size=LIST_MAX)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return records(annotation)
    b = _bounds(metadata)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return _ints(b)
    if annotation is float:
        return _floats(b)
    if annotation is str:
        return _texts(b)
    if annotation in (AwareDatetime, datetime):
        return _timestamps(extra)
    msg = f"no strategy for a contract field of type {annotation!r}; add one to tests/contract_strategies.py"
    raise TypeError(msg)


@functools.cache  # built once per model: rebuilding the nested strategies on every draw dominated the run time
def records(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON-ready dicts that ``model`` accepts: required fields always, optional ones sometimes."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        strategy = values(info.annotation, list(info.metadata), info.json_schema_extra)
        (required if info.is_required() else optional)[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def encode(obj: Any, ascii_only: bool = False) -> bytes:
    """A producer's JSON: NaN/Infinity spelled as JavaScript does, lone surrogates escaped."""
    return json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", errors="surrogatepass")


def valid_bytes(model: type[BaseModel]) -> st.SearchStrategy[bytes]:
    return st.builds(encode, records(model), st.booleans())


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value (each dict entry and list item, at any depth)."""
    out: list[tuple[Any, ...]] = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _replace(obj: Any, path: tuple[Any, ...], value: Any, drop: bool = False) -> Any:
    if not path:
        return value
    head, *rest = path
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    if drop and not rest:
        del copy[head]
    else:
        copy[head] = _replace(copy[head], tuple(rest), value, drop)
    return copy


@st.composite
def _field_mutation(draw: st.DrawFn, model: type[BaseModel]) -> bytes:
    obj = draw(records(model))
    paths = _paths(obj)
    kind = draw(st.sampled_from(["replace", "replace", "drop", "unknown", "version"]))
    if kind == "replace" and paths:
        obj = _replace(obj, draw(st.sampled_from(paths)), draw(st.sampled_from(OUT_OF_CONTRACT)))
    elif kind == "drop" and paths:
        obj = _replace(obj, draw(st.sampled_from(paths)), None, drop=True)
    elif kind == "unknown":
        obj = {**obj, draw(st.sampled_from(["zz_unknown", "eventId", "schema"])): draw(st.sampled_from(OUT_OF_CONTRACT))}
    else:
        obj = {**obj, "schema_version": draw(st.sampled_from([0, 2, 99, "1", 1.0, None, 2**64]))}
    return encode(obj, ascii_only=draw(st.booleans()))


@st.composite
def _byte_mutation(draw: st.DrawFn, model: type[BaseModel]) -> bytes:
    good = draw(valid_bytes(model))
    kind = draw(st.sampled_from(["truncate", "bad_utf8", "bom", "oversize", "not_object", "duplicate_key"]))
    if kind == "truncate":
        return good[:draw(st.integers(0, max(0, len(good) - 1)))]
    if kind == "bad_utf8":
        at = draw(st.integers(0, len(good)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]))
        return good[:at] + junk + good[at:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + good
    if kind == "oversize":
        obj = json.loads(good)
        pad = draw(st.sampled_from(["x", "\x00", "\U0001f600"]))
        return encode({**obj, "prompt": pad * (RECORD_LIMIT // len(pad.encode()) + 1)})
    if kind == "not_object":
        return encode(draw(st.sampled_from([[], [json.loads(good)], "text", 1, None, True, 1e400])))
    # {"event_id": "a", ..., "event_id": <other>}: parsers keep the last; both must agree on the outcome
    return good[:-1] + b', "event_id": ' + encode(draw(st.sampled_from(OUT_OF_CONTRACT))) + b"}"


def near_valid_bytes(model: type[BaseModel]) -> st.SearchStrategy[bytes]:
    return st.one_of(_field_mutation(model), _byte_mutation(model))


JUNK: list[bytes | None] = [None, b"", b"null", b"{}", b"\x00" * 60_000, b"[" * 30_000 + b"]" * 30_000,
                            b'{"a":' * 5000 + b"1" + b"}" * 5000, b"\xff\xfe\x00", b"x" * (RECORD_LIMIT + 1)]


def wire_bytes(model: type[BaseModel]) -> st.SearchStrategy[bytes | None]:
    """What a topic of ``model`` may hold: valid records, near-valid ones, junk."""
    return st.one_of(valid_bytes(model), near_valid_bytes(model), st.sampled_from(JUNK))


TOPIC_MODEL: dict[str, type[BaseModel]] = {TOPIC_PROMPTS: PromptEvent, TOPIC_LABELS: LabelEvent, TOPIC_EXPORTS: ExportEvent}
# Project ids and event ids drawn from a small pool, so prompts, labels and exports of one project
# meet in the join, and some event ids repeat with different content.
_PROJECTS = ["p0", "p1", "p2", "p0", "p1", "p" * 128, "\u202ep\x00"]
_EVENTS = ["e0", "e1", "e2", "e3", "e" * 128]


@st.composite
def topic_record(draw: st.DrawFn, topic: str) -> tuple[str, bytes | None, bytes | None]:
    """(topic, key, value) for one record of ``topic``: valid (mostly, sharing ids) or not."""
    model = TOPIC_MODEL[topic]
    kind = draw(st.sampled_from(["valid", "valid", "valid", "near", "junk"]))
    key: bytes | None = None
    if kind == "valid":
        obj = draw(records(model))
        if draw(st.integers(0, 3)):
            obj = {**obj, "project_id": draw(st.sampled_from(_PROJECTS))}
        if draw(st.booleans()):
            obj = {**obj, "event_id": draw(st.sampled_from(_EVENTS))}
        if topic == TOPIC_PROMPTS and draw(st.integers(0, 3)) == 0:
            # claims a teacher served it: the guard checks its signature, whatever text it holds
            obj = {**obj, "served_by": draw(records(ServedBy)) | {"kind": "teacher"},
                   "served_edit": draw(records(Edit)),
                   "served_sig": draw(st.none() | values(str, [annotated_types.MinLen(1), annotated_types.MaxLen(128)]))}
        if draw(st.booleans()) and topic == TOPIC_EXPORTS:
            obj = {**obj, "ts": "2999-12-31T23:59:59.999999Z"}  # after every prompt: it accepts them all
        value: bytes | None = encode(obj, draw(st.booleans()))
        key = obj["project_id"].encode("utf-8")
    elif kind == "near":
        value = draw(near_valid_bytes(model))
    else:
        value = draw(st.sampled_from(JUNK))
    if value is not None and len(value) > PRODUCIBLE:  # still oversize for the worker, not refused by the broker
        value = value[:PRODUCIBLE]
    if draw(st.integers(0, 9)) == 0:
        key = draw(st.sampled_from([None, b"", b"\xff\xfe", b"k" * 2000]))
    return topic, key, value


def draw_many(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` values of ``strategy``, each drawn as its own small example.

    A corpus of hundreds of contract records drawn as one example overruns Hypothesis' per-example
    budget (almost every attempt is thrown away); drawn one by one, each stays small. The black-box
    test uses this: a worker run cannot be shrunk anyway, and its audit names the offending offsets.
    """
    out: list[Any] = []

    @settings(FAST, max_examples=n, phases=[Phase.generate])
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


def corpus(min_size: int = 1, max_size: int = 60) -> st.SearchStrategy[list[tuple[str, bytes | None, bytes | None]]]:
    """Records across the prompt, label and export topics, in the order they are produced."""
    return st.lists(st.sampled_from(list(TOPIC_MODEL)).flatmap(topic_record), min_size=min_size, max_size=max_size)

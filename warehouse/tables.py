"""Table schemas of the stream-fed tables, and how an event becomes a row, both derived from the
event contracts in ``schemas/events.py``.

One ``TableSpec`` per table says which event model feeds it, the column prefix of each nested
model (``served_by`` → ``served_kind``, ``served_model``, ...), and the few columns computed from
the event (``prompt_norm``, ``n_repairs``). The Arrow schema and the row come out of the same walk
over the model's fields, so a field added to an event is a column at once, and a row can never
miss a column (it would raise here, not turn into a silent null in Parquet).

Every stream row carries lineage: ``src_topic``/``src_partition``/``src_offset`` say where it was
read from the log, so any row can be traced back and the warehouse rebuilt by replaying the log.
Edits are stored as canonical edit JSON text (schemas.canonical_json); lists as JSON text.
Timestamps are UTC.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple

import pyarrow as pa
from pydantic import AwareDatetime, BaseModel

from schemas import Edit, canonical_json
from schemas.events import AcceptedExample, DlqRecord, ExportEvent, LabelEvent, PromptEvent
from schemas.text import normalise_prompt

TS = pa.timestamp("us", tz="UTC")
NOT_STORED = frozenset({"schema_version"})  # the contract version is checked on read, not kept per row
# Partitions fit in 32 bits, and earlier Parquet files stored them so.
_LEAF_TYPES: dict[str, pa.DataType] = {"partition": pa.int32()}


class Source(NamedTuple):
    """Where a record was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int


Derived = tuple[str, pa.DataType, Callable[[Any], Any]]


@dataclass(frozen=True)
class TableSpec:
    model: type[BaseModel]
    prefixes: dict[str, str] = field(default_factory=dict)  # nested-model field -> column prefix
    derived: tuple[Derived, ...] = ()                      # (column, type, f(event)), after the field it follows


_LINEAGE: list[tuple[str, pa.DataType]] = [("src_topic", pa.string()), ("src_partition", pa.int32()),
                                           ("src_offset", pa.int64()), ("ingested_at", TS)]
# One prompt text is landed three times (its prompt, its label, its accepted example), and
# normalising it was the largest part of building a row; the text is the key (its hash is kept on
# the string), so the label and the example, which carry the prompt's own string, hit.
_normalised = functools.lru_cache(maxsize=1 << 16)(normalise_prompt)
_PROMPT_NORM: Derived = ("prompt_norm", pa.string(), lambda e: _normalised(e.prompt))
_SERVED = {"served_by": "served_"}

SPECS: dict[str, TableSpec] = {
    "prompts": TableSpec(PromptEvent, _SERVED, (_PROMPT_NORM,)),
    "exports": TableSpec(ExportEvent),
    "labels": TableSpec(LabelEvent, {**_SERVED, "teacher": "teacher_", "source": "prompt_src_"},
                        (_PROMPT_NORM, ("n_repairs", pa.int32(), lambda e: len(e.repairs)))),
    "accepted_examples": TableSpec(AcceptedExample, {**_SERVED, "teacher": "teacher_", "label_source_ref": "label_src_",
                                                     "export_source_ref": "export_src_"}, (_PROMPT_NORM,)),
    "dlq": TableSpec(DlqRecord, {"source": "bad_"}),
}


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Literal[...]`` -> the type of its values."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation


def _arrow_type(name: str, annotation: Any) -> pa.DataType:
    kind = _unwrap(annotation)
    if name in _LEAF_TYPES:
        return _LEAF_TYPES[name]
    if kind is bool:
        return pa.bool_()
    if kind is int:
        return pa.int64()
    if kind is float:
        return pa.float64()
    if kind in (datetime, AwareDatetime):
        return TS
    if kind is str or kind is Edit or typing.get_origin(kind) in (list, dict):
        return pa.string()
    msg = f"no Parquet type for field {name!r} ({annotation}); add one in warehouse/tables.py"
    raise TypeError(msg)


def _is_model(annotation: Any) -> bool:
    kind = _unwrap(annotation)
    return isinstance(kind, type) and issubclass(kind, BaseModel) and kind is not Edit


def _columns(model: type[BaseModel], prefixes: dict[str, str], prefix: str = "") -> list[tuple[str, pa.DataType]]:
    cols: list[tuple[str, pa.DataType]] = []
    for name, info in model.model_fields.items():
        if name in NOT_STORED:
            continue
        if _is_model(info.annotation):
            if name not in prefixes:
                msg = f"{model.__name__}.{name} is a nested model: give it a column prefix in warehouse/tables.py SPECS"
                raise TypeError(msg)
            cols += _columns(_unwrap(info.annotation), {}, prefixes[name])
        else:
            cols.append((prefix + name, _arrow_type(name, info.annotation)))
    return cols


def _schema(spec: TableSpec) -> pa.Schema:
    cols = _columns(spec.model, spec.prefixes)
    cols += [(name, kind) for name, kind, _ in spec.derived]
    return pa.schema([*cols, *_LINEAGE])


SCHEMAS: dict[str, pa.Schema] = {table: _schema(spec) for table, spec in SPECS.items()}
STREAM_TABLES = tuple(SCHEMAS)


def to_row(table: str, event: BaseModel, src: Source) -> dict[str, Any]:
    """The row of ``table`` for ``event`` read at ``src``; has exactly the columns of ``SCHEMAS[table]``.

    One event through ``to_columns``, so a row and a column batch can never disagree."""
    columns = to_columns(table, [event], src.topic, src.partition, [src.offset])
    return {name: values[0] for name, values in columns.items()}


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    """How a field's value becomes its column's value (an edit its canonical JSON, a list or dict
    its JSON text), decided once per field."""
    kind = _unwrap(annotation)
    if kind is Edit:
        # cached per edit object (schemas.edit): one edit object is landed several times
        return canonical_json
    if typing.get_origin(kind) in (list, dict):
        return _json_text
    return None


def _json_text(value: Any) -> str:
    # Most lists landed are empty (a label's repairs): their text is known without an encoder.
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value, ensure_ascii=False)


# A table's column plan: per field (attribute, column, converter, nested plan or None).
ColumnPlan = list[tuple[str, str, "Callable[[Any], Any] | None", "ColumnPlan | None"]]


def _column_plan(model: type[BaseModel], prefixes: dict[str, str], prefix: str = "") -> ColumnPlan:
    plan: ColumnPlan = []
    for name, info in model.model_fields.items():
        if name in NOT_STORED:
            continue
        if _is_model(info.annotation):
            plan.append((name, "", None, _column_plan(_unwrap(info.annotation), {}, prefixes[name])))
        else:
            plan.append((name, prefix + name, _converter(info.annotation), None))
    return plan


COLUMN_PLANS: dict[str, ColumnPlan] = {table: _column_plan(spec.model, spec.prefixes) for table, spec in SPECS.items()}


def _fill(records: list[Any], plan: ColumnPlan, out: dict[str, list[Any]]) -> None:
    """Add ``plan``'s columns of ``records`` (none of them None) to ``out``, in any order.

    The fields of a model are read for all records at once (``attrgetter`` of every field, then
    transposed), not one ``getattr`` per cell: the cells were most of the cost of a row.
    """
    if not records:
        for _, column, _, nested in plan:
            if nested is None:
                out[column] = []
            else:
                _fill([], nested, out)
        return
    get = attrgetter(*(name for name, _, _, _ in plan))
    fields = [get(r) for r in records] if len(plan) > 1 else [(get(r),) for r in records]
    for (_, column, convert, nested), values in zip(plan, zip(*fields)):
        if nested is not None:
            _fill_nullable(values, nested, out)
        elif convert is not None:
            out[column] = [None if v is None else convert(v) for v in values]
        else:
            out[column] = list(values)


def _fill_nullable(values: Sequence[Any], plan: ColumnPlan, out: dict[str, list[Any]]) -> None:
    """``_fill`` for the values of a nested model, which may be absent (None) in some records."""
    present = [v for v in values if v is not None]
    if len(present) == len(values):
        _fill(present, plan, out)
        return
    part: dict[str, list[Any]] = {}
    _fill(present, plan, part)
    where = [i for i, v in enumerate(values) if v is not None]
    for column, column_values in part.items():
        full: list[Any] = [None] * len(values)
        for i, v in zip(where, column_values):
            full[i] = v
        out[column] = full


def to_columns(table: str, events: list[BaseModel], topic: str, partition: int | list[int], offsets: list[int],
               ingested_at: datetime | None = None) -> dict[str, list[Any]]:
    """The rows of ``table`` for ``events`` read from ``topic``/``partition`` at ``offsets``, as
    columns (column -> values, in ``SCHEMAS[table]`` order): the values ``to_row`` gives, built a
    column at a time. ``partition``: one for every row, or each row's (a batch that spans
    partitions, ``streams/sink.py``). One ``ingested_at`` for the batch (now, by default)."""
    spec = SPECS[table]
    for event in events:
        if not isinstance(event, spec.model):
            msg = f"table {table} stores {spec.model.__name__} records, not {type(event).__name__}"
            raise TypeError(msg)
    cells: dict[str, list[Any]] = {}
    _fill(events, COLUMN_PLANS[table], cells)
    for name, _, compute in spec.derived:
        cells[name] = [compute(e) for e in events]
    n = len(events)
    partitions = list(partition) if isinstance(partition, list) else [partition] * n
    cells.update(src_topic=[topic] * n, src_partition=partitions, src_offset=list(offsets),
                 ingested_at=[ingested_at or datetime.now(UTC)] * n)
    return {name: cells[name] for name in SCHEMAS[table].names}


def rows_to_columns(table: str, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows of ``table`` (dicts with exactly its columns, ``to_row``) as columns in ``SCHEMAS[table]``
    order, what ``warehouse.writer.write_columns`` takes. A row with a missing or unknown column
    raises: Arrow would store a missing one as null without a word."""
    names = SCHEMAS[table].names
    wanted = set(names)
    for row in rows:
        if row.keys() != wanted:
            missing, extra = sorted(wanted - row.keys()), sorted(row.keys() - wanted)
            msg = (f"a {table} row does not match the table's columns (missing {missing}, unknown {extra}); "
                   "build rows with warehouse.tables.to_row")
            raise ValueError(msg)
    return {name: [row[name] for row in rows] for name in names}


def prompt_row(e: PromptEvent, src: Source) -> dict[str, Any]:
    return to_row("prompts", e, src)


def export_row(e: ExportEvent, src: Source) -> dict[str, Any]:
    return to_row("exports", e, src)


def label_row(e: LabelEvent, src: Source) -> dict[str, Any]:
    return to_row("labels", e, src)


def accepted_row(e: AcceptedExample, src: Source) -> dict[str, Any]:
    return to_row("accepted_examples", e, src)


def dlq_row(e: DlqRecord, src: Source) -> dict[str, Any]:
    return to_row("dlq", e, src)

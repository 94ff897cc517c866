"""Event contracts for the Kafka topics (the README's "Events" table lists them).

Every record is JSON, keyed by ``project_id``, and carries ``schema_version``. App producers send
``PromptEvent`` and ``ExportEvent``; the agents produce the rest. Models forbid unknown fields so
a producer's typo fails loudly instead of silently losing data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, model_validator
from pydantic_core import core_schema

from schemas.edit import Edit

SCHEMA_VERSION: Final = 1
MAX_PROMPT_CHARS = 500  # longer "prompts" are pasted text, not looks; they go to the DLQ
MAX_ID_CHARS = 128

TOPIC_PROMPTS = "toneflow.prompts"
TOPIC_EXPORTS = "toneflow.exports"
TOPIC_LABELS = "toneflow.labels"
TOPIC_ACCEPTED = "toneflow.accepted"
TOPIC_RETRAIN = "toneflow.retrain"
TOPIC_DLQ = "toneflow.dlq"
TOPICS: tuple[str, ...] = (
    TOPIC_PROMPTS, TOPIC_EXPORTS, TOPIC_LABELS, TOPIC_ACCEPTED, TOPIC_RETRAIN, TOPIC_DLQ,
)

M = TypeVar("M", bound=BaseModel)
Id = Field(min_length=1, max_length=MAX_ID_CHARS)
Variant = str

# Bounds every consumer handles, so a record that passes the contract cannot crash one downstream:
# timestamps within these years convert to UTC, Arrow and DuckDB without overflow (9999-12-31 with
# a negative offset does not: ``astimezone`` overflows); integers fit the int64 Parquet columns
# (warehouse/tables.py), partitions its int32 column; token counts are bounded far below int64 so
# that sums per row (tokens = prompt + completion) cannot overflow either.
MIN_TS: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TS: Final = datetime(3000, 1, 1, tzinfo=UTC)
INT64_MAX: Final = 2**63 - 1
INT32_MAX: Final = 2**31 - 1
MAX_TOKENS: Final = 2**40  # ~1.1e12: no teacher call reports more; larger usage is clamped by the teacher


def utcnow() -> datetime:
    return datetime.now(UTC)


# Bounds checked by pydantic's own validator (``ge``/``lt``), not a Python function after it: a
# Python validator on every event's timestamp was ~1 µs of each decode in the worker.
Timestamp = Annotated[AwareDatetime, Field(ge=MIN_TS, lt=MAX_TS,
                                           json_schema_extra={"formatMinimum": MIN_TS.isoformat(),
                                                              "formatExclusiveMaximum": MAX_TS.isoformat()})]


def _unencodable_string(data: Any) -> str | None:
    """The path of the first string that is not valid Unicode text (a lone surrogate), else None.

    ``json.loads`` turns ``"\\ud800"`` into such a string; pydantic keeps it, and it would then fail
    in every encoder downstream (the wire form, Arrow). Walked without recursion: inputs can be deep.
    """
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path or "<root>"
        elif isinstance(item, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in item.items())
            stack.extend((f"{path}.<key>" if path else "<key>", k) for k in item if isinstance(k, str))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(item))
    return None


def _check_unicode(data: Any) -> Any:
    where = _unencodable_string(data)
    if where is not None:
        msg = f"{where}: text is not valid Unicode (a lone surrogate such as \\ud800); send UTF-8 text"
        raise ValueError(msg)
    return data


class _Record(BaseModel):
    # NaN and Infinity are not numbers any consumer can add up, and JSON has no spelling for them
    # (pydantic writes them as null, which then breaks the record's own contract downstream).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    schema_version: Literal[1] = Field(
        SCHEMA_VERSION, description="contract version; consumers reject versions they do not know",
    )

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Python input (a dict from ``json.loads``, which turns ``"\\ud800"`` into a lone surrogate)
        is checked for text that is not valid Unicode before the model validates it.

        JSON text is not: pydantic parses it itself and refuses a lone surrogate escape ("lone
        leading surrogate in hex escape"), so every string is valid already. Only on the Python
        side, not as a ``model_validator(mode="before")``: a before-validator makes pydantic turn
        the parsed JSON into Python dicts and lists to hand them over, and validate those again,
        which was a fifth of the cost of decoding a prompt in the worker.
        """
        schema = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=schema, python_schema=core_schema.no_info_before_validator_function(_check_unicode, schema))


ServedKind = Literal["teacher", "student"]


class ServedBy(BaseModel):
    """Which model produced the edit the user saw (the A/B arm).

    ``kind`` says whether a teacher or a student answered; the feedback-loop guard
    (streams/guard.py) and the trainer's student-share cap decide on it. Records written before
    ``kind`` existed said ``model: "teacher/<name>"``; they are still read (split into kind and name).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ServedKind
    model: str = Field(min_length=1, max_length=MAX_ID_CHARS,
                       description="the model's name within its kind, e.g. 'offline' or 'openai' for a teacher, "
                                   "'minilm' for a student")
    version: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    variant: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="A/B arm name")

    @model_validator(mode="before")
    @classmethod
    def _legacy_prefixed_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data and isinstance(data.get("model"), str):
            kind, sep, name = data["model"].partition("/")
            if sep and kind in ("teacher", "student") and name:
                return {**data, "kind": kind, "model": name}
        return data

    @property
    def by_teacher(self) -> bool:
        return self.kind == "teacher"


class PromptEvent(_Record):
    """A user typed a look. Produced by the app to ``toneflow.prompts``."""

    event_id: str = Id
    project_id: str = Id
    user_id: str = Id
    ts: Timestamp
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    served_by: ServedBy | None = None
    served_edit: Edit | None = Field(None, description="the edit the app applied, if any")
    served_sig: str | None = Field(
        None, min_length=1, max_length=128,
        description="set by the serving layer: HMAC-SHA256 over prompt, served_by and served_edit (schemas/trust.py); "
                    "a teacher-served edit is reused as a label only with a valid one")


class ExportEvent(_Record):
    """The user exported the project: the behavioural signal that the edit was accepted."""

    event_id: str = Id
    project_id: str = Id
    user_id: str = Id
    ts: Timestamp
    final_edit: Edit | None = Field(None, description="the edit actually exported, if the user tweaked it")


class TeacherRef(BaseModel):
    # Bounded, as is every text a label hands on to its accepted example: unbounded, a label just
    # under the record limit made an accepted example over it, which its sink could only skip.
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    version: str = Field(min_length=1, max_length=2 * MAX_ID_CHARS, description="e.g. '<model>@<prompt version>'")


class SourceRef(BaseModel):
    """Where a record came from in the log, so any row can be traced and the warehouse replayed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str
    partition: int = Field(ge=0, le=INT32_MAX)
    offset: int = Field(ge=0, le=INT64_MAX)


class LabelEvent(_Record):
    """The teacher's edit for one prompt. ``event_id`` is the prompt's event_id."""

    event_id: str = Id
    project_id: str = Id
    user_id: str = Id
    prompt: str = Field(max_length=MAX_PROMPT_CHARS, description="the prompt's text (PromptEvent.prompt)")
    prompt_ts: Timestamp
    teacher: TeacherRef
    edit: Edit
    repairs: list[str] = Field(default_factory=list, description="repairs applied to the teacher output")
    latency_ms: float = Field(ge=0)
    prompt_tokens: int = Field(0, ge=0, le=MAX_TOKENS)
    completion_tokens: int = Field(0, ge=0, le=MAX_TOKENS)
    cost: float = Field(0.0, ge=0, description="USD")
    cached: bool = False
    reused_served_edit: bool = Field(False, description="label taken from served_edit, no teacher call")
    served_by: ServedBy | None = None
    served_edit: Edit | None = None
    source: SourceRef | None = None
    ts: Timestamp = Field(default_factory=utcnow)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


LabelSource = Literal["teacher", "user_corrected"]


class AcceptedExample(_Record):
    """One training example: a labelled prompt whose project was exported."""

    event_id: str = Id
    project_id: str = Id
    user_id: str = Id
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    edit: Edit = Field(description="the training label: the user's final edit if any, else the teacher's")
    label_source: LabelSource
    teacher_edit: Edit
    teacher: TeacherRef
    teacher_tokens: int = Field(0, ge=0, le=2 * MAX_TOKENS, description="tokens of the teacher call that labelled it")
    teacher_cost: float = Field(0.0, ge=0, description="USD of that call")
    look_slice: str = Field(description="coarse look family, see schemas.edit.look_slice")
    quality: float = Field(1.0, ge=0, le=1, description="label quality estimate; the retrain trigger counts above a floor")
    served_by: ServedBy | None = None
    served_edit: Edit | None = None
    export_event_id: str = Id
    prompt_ts: Timestamp
    export_ts: Timestamp
    label_source_ref: SourceRef | None = None
    export_source_ref: SourceRef | None = None
    ts: Timestamp = Field(default_factory=utcnow)


class RetrainEvent(_Record):
    """The trigger says there is enough new accepted data to train a new student."""

    trigger_id: str = Id
    reason: str
    new_examples: int = Field(ge=0, le=INT64_MAX)
    per_slice: dict[str, Annotated[int, Field(ge=0, le=INT64_MAX)]] = Field(default_factory=dict)
    snapshot_ref: str | None = None
    ts: Timestamp = Field(default_factory=utcnow)


class DlqRecord(_Record):
    """A record an agent could not process, with where it came from and why."""

    stage: str = Field(description="the agent/stage that rejected it, e.g. 'labeler.decode'")
    error_kind: str = Field(description="machine-readable reason, e.g. 'schema_violation'")
    error: str
    source: SourceRef | None = None
    key: str | None = None
    raw: str = Field(description="the original value, UTF-8 with undecodable bytes escaped")
    raw_truncated: bool = False
    event_id: str | None = None
    ts: Timestamp = Field(default_factory=utcnow)


EVENT_MODELS: dict[str, type[_Record]] = {
    "prompt": PromptEvent,
    "export": ExportEvent,
    "label": LabelEvent,
    "accepted": AcceptedExample,
    "retrain": RetrainEvent,
    "dlq": DlqRecord,
}
TOPIC_MODELS: dict[str, type[_Record]] = {
    TOPIC_PROMPTS: PromptEvent,
    TOPIC_EXPORTS: ExportEvent,
    TOPIC_LABELS: LabelEvent,
    TOPIC_ACCEPTED: AcceptedExample,
    TOPIC_RETRAIN: RetrainEvent,
    TOPIC_DLQ: DlqRecord,
}


def construct(model: type[M], **values: Any) -> M:
    """``model.model_construct(**values)`` where ``values`` name every field of ``model``.

    For events built from events already validated (a reused label, an accepted example; see their
    callers): no validation, as with ``model_construct``, but without pydantic's walk over every
    field for aliases and defaults, which cost more than the rest of building a label (~20 µs).
    The instance is what ``model_construct`` makes: the same ``__dict__`` (in field order, which
    the JSON keeps), every field set, no extra or private values. A missing or unknown field
    raises instead of being defaulted or dropped.
    """
    fields = model.__pydantic_fields__
    if values.keys() != fields.keys():
        missing, unknown = sorted(fields.keys() - values.keys()), sorted(values.keys() - fields.keys())
        msg = f"construct({model.__name__}) needs every field: missing {missing}, unknown {unknown}"
        raise TypeError(msg)
    record = model.__new__(model)
    object.__setattr__(record, "__dict__", {name: values[name] for name in fields})
    object.__setattr__(record, "__pydantic_fields_set__", set(fields))
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


def to_json_bytes(record: BaseModel) -> bytes:
    """The wire form: compact JSON, UTF-8, ``None`` fields dropped."""
    return record.model_dump_json(exclude_none=True).encode("utf-8")


def to_dict(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_none=True)

"""Event contracts for the Kafka topics (the README's "Events" table lists them).

Every record is JSON, keyed by ``project_id``, and carries ``schema_version``. App producers send
``PromptEvent`` and ``ExportEvent``; the agents produce the rest. Models forbid unknown fields so
a producer's typo fails loudly instead of silently losing data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

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

Id = Field(min_length=1, max_length=MAX_ID_CHARS)
Variant = str


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = Field(
        SCHEMA_VERSION, description="contract version; consumers reject versions they do not know",
    )


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
    ts: AwareDatetime
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    served_by: ServedBy | None = None
    served_edit: Edit | None = Field(None, description="the edit the app applied, if any")


class ExportEvent(_Record):
    """The user exported the project: the behavioural signal that the edit was accepted."""

    event_id: str = Id
    project_id: str = Id
    user_id: str = Id
    ts: AwareDatetime
    final_edit: Edit | None = Field(None, description="the edit actually exported, if the user tweaked it")


class TeacherRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str
    version: str


class SourceRef(BaseModel):
    """Where a record came from in the log, so any row can be traced and the warehouse replayed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class LabelEvent(_Record):
    """The teacher's edit for one prompt. ``event_id`` is the prompt's event_id."""

    event_id: str = Id
    project_id: str = Id
    user_id: str = Id
    prompt: str
    prompt_ts: AwareDatetime
    teacher: TeacherRef
    edit: Edit
    repairs: list[str] = Field(default_factory=list, description="repairs applied to the teacher output")
    latency_ms: float = Field(ge=0)
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cost: float = Field(0.0, ge=0, description="USD")
    cached: bool = False
    reused_served_edit: bool = Field(False, description="label taken from served_edit, no teacher call")
    served_by: ServedBy | None = None
    served_edit: Edit | None = None
    source: SourceRef | None = None
    ts: AwareDatetime = Field(default_factory=utcnow)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


LabelSource = Literal["teacher", "user_corrected"]


class AcceptedExample(_Record):
    """One training example: a labelled prompt whose project was exported."""

    event_id: str = Id
    project_id: str = Id
    user_id: str = Id
    prompt: str
    edit: Edit = Field(description="the training label: the user's final edit if any, else the teacher's")
    label_source: LabelSource
    teacher_edit: Edit
    teacher: TeacherRef
    teacher_tokens: int = Field(0, ge=0, description="tokens of the teacher call that labelled it")
    teacher_cost: float = Field(0.0, ge=0, description="USD of that call")
    look_slice: str = Field(description="coarse look family, see schemas.edit.look_slice")
    quality: float = Field(1.0, ge=0, le=1, description="label quality estimate; the retrain trigger counts above a floor")
    served_by: ServedBy | None = None
    served_edit: Edit | None = None
    export_event_id: str = Id
    prompt_ts: AwareDatetime
    export_ts: AwareDatetime
    label_source_ref: SourceRef | None = None
    export_source_ref: SourceRef | None = None
    ts: AwareDatetime = Field(default_factory=utcnow)


class RetrainEvent(_Record):
    """The trigger says there is enough new accepted data to train a new student."""

    trigger_id: str = Id
    reason: str
    new_examples: int = Field(ge=0)
    per_slice: dict[str, int] = Field(default_factory=dict)
    snapshot_ref: str | None = None
    ts: AwareDatetime = Field(default_factory=utcnow)


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
    ts: AwareDatetime = Field(default_factory=utcnow)


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


def to_json_bytes(record: BaseModel) -> bytes:
    """The wire form: compact JSON, UTF-8, ``None`` fields dropped."""
    return record.model_dump_json(exclude_none=True).encode("utf-8")


def to_dict(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_none=True)

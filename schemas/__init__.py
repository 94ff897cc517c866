"""Contracts: the edit (the tools' output) and the Kafka events. Every other package imports these.

JSON Schema files for app producers in other languages are generated into ``schemas/json/`` by
``toneflow schemas generate``; a test fails when they drift from these models.
"""

from schemas.edit import (
    ADJUST_PARAMS,
    COLOUR_RANGES,
    EMPTY_EDIT,
    HSL_CHANNELS,
    TOOLS,
    Adjust,
    Edit,
    Filter,
    RangeAdjust,
    SelectiveAdjust,
    Tool,
    adjust_vector,
    canonical_dict,
    canonical_json,
    selective_vector,
)
from schemas.events import (
    SCHEMA_VERSION,
    TOPICS,
    AcceptedExample,
    DlqRecord,
    ExportEvent,
    LabelEvent,
    PromptEvent,
    RetrainEvent,
    ServedBy,
    SourceRef,
    TeacherRef,
)
from schemas.exceptions import RepairFailed, SchemaViolation, Violation
from schemas.filters import FILTER_CATALOGUE_VERSION, FILTER_NAMES, FILTERS
from schemas.validation import Repair, RepairResult, repair_edit, validate_edit, validate_event

__all__ = [
    "ADJUST_PARAMS", "COLOUR_RANGES", "EMPTY_EDIT", "FILTERS", "FILTER_CATALOGUE_VERSION",
    "FILTER_NAMES", "HSL_CHANNELS", "SCHEMA_VERSION", "TOOLS", "TOPICS", "AcceptedExample",
    "Adjust", "DlqRecord", "Edit", "ExportEvent", "Filter", "LabelEvent", "PromptEvent",
    "RangeAdjust", "Repair", "RepairFailed", "RepairResult", "RetrainEvent", "SchemaViolation",
    "SelectiveAdjust", "ServedBy", "SourceRef", "TeacherRef", "Tool", "Violation",
    "adjust_vector", "canonical_dict", "canonical_json", "repair_edit", "selective_vector",
    "validate_edit", "validate_event",
]

"""Two entry points into the edit contract.

* ``validate_edit`` is strict: anything off-contract raises ``SchemaViolation`` naming the path
  and value. Use it for app producers and for anything already repaired.
* ``repair_edit`` is for model output (teacher or student): it clamps ranges, rounds numbers,
  drops unknown keys and unknown filter names, and returns every change it made as a ``Repair``
  so callers can count them (nothing is clamped silently).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from schemas.edit import (
    ADJUST_PARAMS,
    COLOUR_RANGES,
    DEFAULT_FILTER_INTENSITY,
    HSL_CHANNELS,
    INTENSITY_MAX,
    INTENSITY_MIN,
    PARAM_MAX,
    PARAM_MIN,
    TOOLS,
    Edit,
)
from schemas.exceptions import RepairFailed, SchemaViolation, Violation
from schemas.filters import FILTER_NAMES, normalise_filter_name

RepairKind = Literal[
    "extracted_json", "dropped_key", "dropped_tool", "dropped_value", "renamed_key",
    "parsed_number", "rounded", "clamped", "renamed_filter", "unknown_filter",
    "defaulted_intensity",
]

# Spellings models commonly produce for the tool keys.
_TOOL_ALIASES = {
    "selectiveadjust": "selective_adjust", "selective adjust": "selective_adjust",
    "selective-adjust": "selective_adjust", "hsl": "selective_adjust", "filters": "filter",
    "adjustment": "adjust", "adjustments": "adjust",
}
_PARAM_ALIASES = {p.lower(): p for p in ADJUST_PARAMS} | {
    "linear_offset": "linearOffset", "warmth": "temperature", "clarity": "structure",
}


def pydantic_violations(err: ValidationError) -> list[Violation]:
    """Turn pydantic's error list into path/value/reason triples."""
    out = []
    for item in err.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"])
        out.append(Violation(path, item.get("input"), item["msg"]))
    return out


def validate_model(model: type[BaseModel], obj: Any, what: str) -> Any:
    """Strictly validate ``obj`` (a dict, or JSON text/bytes) against ``model``."""
    try:
        if isinstance(obj, (str, bytes, bytearray)):
            return model.model_validate_json(obj)
        return model.model_validate(obj)
    except ValidationError as err:
        raise SchemaViolation(what, pydantic_violations(err)) from None


def validate_edit(obj: Any) -> Edit:
    """Strict: returns the Edit or raises SchemaViolation naming the bad field's path and value."""
    if isinstance(obj, Edit):
        return obj
    return validate_model(Edit, obj, "edit")


@dataclass(frozen=True)
class Repair:
    kind: RepairKind
    path: str
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        return f"{self.kind} {self.path}: {self.before!r} -> {self.after!r}"


@dataclass
class RepairResult:
    edit: Edit
    repairs: list[Repair] = field(default_factory=list)

    @property
    def repaired(self) -> bool:
        return bool(self.repairs)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.repairs:
            counts[r.kind] = counts.get(r.kind, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {"edit": self.edit.canonical_dict(), "repairs": [asdict(r) for r in self.repairs]}


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _parse_text(text: str, repairs: list[Repair]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # Models wrap JSON in prose or ``` fences; take the outermost {...}.
    match = _JSON_OBJECT.search(text)
    if match:
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            pass
        else:
            repairs.append(Repair("extracted_json", "", text[:60], None))
            return obj
    msg = f"model output is not JSON: {text[:80]!r}"
    raise RepairFailed(msg)


def _repair_number(value: Any, path: str, lo: int, hi: int, repairs: list[Repair]) -> int | None:
    original = value
    if isinstance(value, bool) or value is None:
        repairs.append(Repair("dropped_value", path, original, None))
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            repairs.append(Repair("dropped_value", path, original, None))
            return None
        repairs.append(Repair("parsed_number", path, original, value))
    if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        repairs.append(Repair("dropped_value", path, original, None))
        return None
    if isinstance(value, float):
        rounded = int(round(value))
        if rounded != value:
            repairs.append(Repair("rounded", path, value, rounded))
        value = rounded
    if value < lo or value > hi:
        clamped = max(lo, min(hi, value))
        repairs.append(Repair("clamped", path, value, clamped))
        value = clamped
    return int(value)


def _repair_params(obj: Any, path: str, names: dict[str, str], repairs: list[Repair]) -> dict[str, int] | None:
    if not isinstance(obj, dict):
        repairs.append(Repair("dropped_tool", path, obj, None))
        return None
    out: dict[str, int] = {}
    for key, value in obj.items():
        canonical = names.get(str(key).lower())
        if canonical is None:
            repairs.append(Repair("dropped_key", f"{path}.{key}", value, None))
            continue
        if canonical != key:
            repairs.append(Repair("renamed_key", f"{path}.{key}", key, canonical))
        number = _repair_number(value, f"{path}.{canonical}", PARAM_MIN, PARAM_MAX, repairs)
        if number is not None:
            out[canonical] = number
    return out


def _repair_filter(obj: Any, repairs: list[Repair]) -> dict[str, Any] | None:
    if isinstance(obj, str):  # "filter": "mono_Noir"
        obj = {"name": obj}
    if not isinstance(obj, dict):
        repairs.append(Repair("dropped_tool", "filter", obj, None))
        return None
    for key in obj:
        if key not in ("name", "intensity"):
            repairs.append(Repair("dropped_key", f"filter.{key}", obj[key], None))
    name = obj.get("name")
    if not isinstance(name, str):
        repairs.append(Repair("unknown_filter", "filter.name", name, None))
        return None
    if name not in FILTER_NAMES:
        known = normalise_filter_name(name)
        if known is None:
            repairs.append(Repair("unknown_filter", "filter.name", name, None))
            return None
        repairs.append(Repair("renamed_filter", "filter.name", name, known))
        name = known
    if "intensity" not in obj:
        repairs.append(Repair("defaulted_intensity", "filter.intensity", None, DEFAULT_FILTER_INTENSITY))
        intensity: int | None = DEFAULT_FILTER_INTENSITY
    else:
        intensity = _repair_number(obj["intensity"], "filter.intensity", INTENSITY_MIN, INTENSITY_MAX, repairs)
        if intensity is None:
            repairs.append(Repair("defaulted_intensity", "filter.intensity", None, DEFAULT_FILTER_INTENSITY))
            intensity = DEFAULT_FILTER_INTENSITY
    return {"name": name, "intensity": intensity}


def repair_edit(raw: Any) -> RepairResult:
    """Turn model output (JSON text or a parsed object) into a valid Edit, recording each change.

    Raises RepairFailed only when there is no JSON object to work with at all.
    """
    repairs: list[Repair] = []
    if isinstance(raw, bytes | bytearray):
        obj = _parse_text(raw.decode("utf-8", errors="replace"), repairs)
    elif isinstance(raw, str):
        obj = _parse_text(raw, repairs)
    else:
        obj = raw
    if isinstance(obj, Edit):
        return RepairResult(obj, [])
    if not isinstance(obj, dict):
        msg = f"model output is not a JSON object: {str(obj)[:80]!r}"
        raise RepairFailed(msg)

    clean: dict[str, Any] = {}
    for key, value in obj.items():
        tool = key if key in TOOLS else _TOOL_ALIASES.get(str(key).lower())
        if tool is None:
            repairs.append(Repair("dropped_key", str(key), value, None))
            continue
        if tool != key:
            repairs.append(Repair("renamed_key", str(key), key, tool))
        if value is None:
            continue
        if tool == "adjust":
            params = _repair_params(value, "adjust", _PARAM_ALIASES, repairs)
            if params is not None:
                clean["adjust"] = params
        elif tool == "selective_adjust":
            if not isinstance(value, dict):
                repairs.append(Repair("dropped_tool", "selective_adjust", value, None))
                continue
            ranges: dict[str, dict[str, int]] = {}
            for colour, channels in value.items():
                name = str(colour).lower()
                if name not in COLOUR_RANGES:
                    repairs.append(Repair("dropped_key", f"selective_adjust.{colour}", channels, None))
                    continue
                fixed = _repair_params(channels, f"selective_adjust.{name}", {c: c for c in HSL_CHANNELS}, repairs)
                if fixed is not None:
                    ranges[name] = fixed
            clean["selective_adjust"] = ranges
        else:
            fixed_filter = _repair_filter(value, repairs)
            if fixed_filter is not None:
                clean["filter"] = fixed_filter
    # Every value is now in range and typed, so strict validation cannot fail here.
    return RepairResult(validate_edit(clean), repairs)


def validate_event(kind: str, obj: Any) -> Any:
    """Strictly validate an event of ``kind`` ('prompt', 'export', ...; or a topic name)."""
    from schemas.events import EVENT_MODELS, TOPIC_MODELS

    model = EVENT_MODELS.get(kind) or TOPIC_MODELS.get(kind)
    if model is None:
        known = ", ".join(sorted(EVENT_MODELS))
        msg = f"unknown event kind {kind!r}; use one of: {known}"
        where = "event kind"
        raise SchemaViolation(where, [Violation("kind", kind, msg)])
    return validate_model(model, obj, f"{kind} event")

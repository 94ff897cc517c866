"""The look library behind the offline teacher: ``looks.yaml`` loaded, checked and hashed.

Guarantees: every look's edit passes ``schemas.validate_edit`` (a typo in the file fails loudly at
load, naming the look); filter names come from ``schemas.filters.FILTER_NAMES``; ``digest`` is a
hash of the file's bytes, so any change to the library changes the offline teacher's version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from schemas.edit import ADJUST_PARAMS, COLOUR_RANGES, HSL_CHANNELS, Edit
from schemas.exceptions import SchemaViolation
from schemas.filters import FILTER_NAMES
from schemas.validation import validate_edit
from teacher.exceptions import LibraryError

LIBRARY_PATH = Path(__file__).with_name("looks.yaml")

# A look's edit as a flat vector: 14 adjust params, then 8 ranges x (hue, sat, lum). Blending and
# scaling looks is arithmetic on these vectors; the filter is handled apart (it is a choice).
VECTOR_KEYS: tuple[str, ...] = ADJUST_PARAMS + tuple(
    f"{colour}.{channel}" for colour in COLOUR_RANGES for channel in HSL_CHANNELS
)


@dataclass(frozen=True)
class Look:
    name: str
    phrases: tuple[str, ...]  # the name first, then the aka's
    edit: Edit
    vector: tuple[float, ...]  # VECTOR_KEYS order
    filter: tuple[str, int] | None  # (name, intensity)


@dataclass(frozen=True)
class Library:
    looks: tuple[Look, ...]
    out_of_scope: tuple[str, ...]
    digest: str  # first 12 hex of sha256 of the file


def _edit_dict(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    unknown = set(entry) - {"name", "aka", "adjust", "hsl", "filter"}
    if unknown:
        msg = f"look {name!r} has unknown keys {sorted(unknown)} in looks.yaml; use adjust, hsl, filter"
        raise LibraryError(msg)
    edit: dict[str, Any] = {}
    if entry.get("adjust"):
        edit["adjust"] = dict(entry["adjust"])
    if entry.get("hsl"):
        ranges = {}
        for colour, triple in entry["hsl"].items():
            if not (isinstance(triple, list) and len(triple) == len(HSL_CHANNELS)):
                msg = f"look {name!r}: hsl.{colour} must be [hue, saturation, luminance], got {triple!r}"
                raise LibraryError(msg)
            ranges[colour] = dict(zip(HSL_CHANNELS, triple, strict=True))
        edit["selective_adjust"] = ranges
    if entry.get("filter"):
        fname, intensity = entry["filter"]
        if fname not in FILTER_NAMES:
            msg = f"look {name!r}: filter {fname!r} is not in schemas.filters.FILTER_NAMES"
            raise LibraryError(msg)
        edit["filter"] = {"name": fname, "intensity": intensity}
    return edit


def edit_vector(edit: Edit) -> tuple[float, ...]:
    """The adjust + selective parameters of ``edit`` in ``VECTOR_KEYS`` order."""
    canon = edit.canonical_dict()
    adjust = canon.get("adjust", {})
    ranges = canon.get("selective_adjust", {})
    values = [float(adjust.get(p, 0)) for p in ADJUST_PARAMS]
    for colour in COLOUR_RANGES:
        values.extend(float(ranges.get(colour, {}).get(c, 0)) for c in HSL_CHANNELS)
    return tuple(values)


def parse_library(text: str) -> Library:
    """Parse and check a library file's text; raises LibraryError naming the offending look."""
    data = yaml.safe_load(text)
    looks: list[Look] = []
    seen: set[str] = set()
    for entry in data.get("looks", []):
        name = str(entry.get("name", "")).strip()
        if not name or name.lower() in seen:
            msg = f"look names in looks.yaml must be unique and non-empty; got {name!r} twice or empty"
            raise LibraryError(msg)
        seen.add(name.lower())
        try:
            edit = validate_edit(_edit_dict(name, entry))
        except SchemaViolation as err:
            msg = f"look {name!r} in looks.yaml has an invalid edit: {err}"
            raise LibraryError(msg) from None
        phrases = (name, *(str(a) for a in entry.get("aka", [])))
        canon_filter = edit.canonical_dict().get("filter")
        flt = (canon_filter["name"], canon_filter["intensity"]) if canon_filter else None
        looks.append(Look(name, phrases, edit, edit_vector(edit), flt))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return Library(tuple(looks), tuple(str(p) for p in data.get("out_of_scope", [])), digest)


@lru_cache(maxsize=4)
def load_library(path: Path = LIBRARY_PATH) -> Library:
    """The library at ``path`` (default: the one shipped in this package), parsed once."""
    return parse_library(path.read_text(encoding="utf-8"))


def vector_to_edit(vector: Sequence[float] | np.ndarray, flt: tuple[str, int] | None) -> Edit:
    """Round and clamp a parameter vector (plus an optional filter) into a valid Edit."""
    adjust: dict[str, int] = {}
    ranges: dict[str, dict[str, int]] = {}
    for key, value in zip(VECTOR_KEYS, vector, strict=True):
        number = max(-100, min(100, int(round(value))))
        if number == 0:
            continue
        if "." in key:
            colour, channel = key.split(".")
            ranges.setdefault(colour, {})[channel] = number
        else:
            adjust[key] = number
    edit: dict[str, Any] = {}
    if adjust:
        edit["adjust"] = adjust
    if ranges:
        edit["selective_adjust"] = ranges
    if flt is not None and flt[1] > 0:
        edit["filter"] = {"name": flt[0], "intensity": max(0, min(100, int(flt[1])))}
    return validate_edit(edit)

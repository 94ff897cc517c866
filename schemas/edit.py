"""The edit: the output contract of every teacher and student (documented in the README, "The edit contract").

An edit is a JSON object with up to three keys, one per tool; a missing key means the tool is not
used and ``{}`` means no tool applies. All parameters are integers; 0 means "unchanged".

Canonical form (``canonical_dict`` / ``canonical_json``): zero parameters are *dropped*, and a tool
left with nothing to do (no non-zero parameter, or a filter at intensity 0) is dropped too, because
it renders exactly like the tool not being used. Keys come in the contract's fixed order. Two edits
that render the same therefore have the same canonical JSON, which is what caches, dedup keys and
the metrics compare.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model

from schemas.filters import FILTER_NAMES

Tool = Literal["adjust", "selective_adjust", "filter"]
TOOLS: tuple[Tool, ...] = ("adjust", "selective_adjust", "filter")

ADJUST_PARAMS: tuple[str, ...] = (
    "exposure", "contrast", "brightness", "highlights", "shadows", "saturation", "vibrance",
    "temperature", "tint", "hue", "bloom", "sharpen", "structure", "linearOffset",
)
COLOUR_RANGES: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta",
)
HSL_CHANNELS: tuple[str, ...] = ("hue", "saturation", "luminance")

PARAM_MIN, PARAM_MAX = -100, 100
INTENSITY_MIN, INTENSITY_MAX = 0, 100
DEFAULT_FILTER_INTENSITY = 100

_FROZEN_STRICT = ConfigDict(extra="forbid", frozen=True)


def _param(description: str) -> Any:
    return Field(0, ge=PARAM_MIN, le=PARAM_MAX, description=description)


_ADJUST_DOC = {
    "exposure": "exposure in linear light (+100 ≈ +2 stops)",
    "contrast": "S-curve around mid-grey",
    "brightness": "midtone brightness",
    "highlights": "recover (-) or boost (+) highlights",
    "shadows": "deepen (-) or lift (+) shadows",
    "saturation": "global saturation; -100 is black and white",
    "vibrance": "saturation that protects already saturated colours and skin",
    "temperature": "white balance: + warmer (amber), - cooler (blue)",
    "tint": "white balance: + magenta, - green",
    "hue": "global hue rotation",
    "bloom": "glow around bright areas",
    "sharpen": "unsharp-mask sharpening (- softens)",
    "structure": "large-radius local contrast (clarity)",
    "linearOffset": "lift (+) or crush (-) the black point",
}

Adjust = create_model(  # type: ignore[call-overload]
    "Adjust",
    __config__=_FROZEN_STRICT,
    __doc__="The adjust tool: 14 global parameters, integers in -100..100, 0 = unchanged.",
    **{name: (StrictInt, _param(_ADJUST_DOC[name])) for name in ADJUST_PARAMS},
)


class RangeAdjust(BaseModel):
    """Hue, saturation and luminance shift of one colour range, integers in -100..100."""

    model_config = _FROZEN_STRICT
    hue: StrictInt = _param("hue shift of this colour range")
    saturation: StrictInt = _param("saturation of this colour range")
    luminance: StrictInt = _param("luminance of this colour range")


SelectiveAdjust = create_model(  # type: ignore[call-overload]
    "SelectiveAdjust",
    __config__=_FROZEN_STRICT,
    __doc__="The selective_adjust tool: per colour range hue/saturation/luminance.",
    **{name: (RangeAdjust | None, Field(None, description=f"the {name} range")) for name in COLOUR_RANGES},
)

FilterName = Literal[FILTER_NAMES]  # type: ignore[valid-type]


class Filter(BaseModel):
    """The filter tool: one named look from the catalogue, blended by intensity."""

    model_config = _FROZEN_STRICT
    name: FilterName = Field(description="a name from the filter catalogue (schemas.filters)")
    intensity: StrictInt = Field(
        DEFAULT_FILTER_INTENSITY, ge=INTENSITY_MIN, le=INTENSITY_MAX,
        description="blend of the look, 0..100",
    )


class Edit(BaseModel):
    """One edit: up to three tools. A missing key means the tool is not used."""

    model_config = _FROZEN_STRICT
    adjust: Adjust | None = None
    selective_adjust: SelectiveAdjust | None = None
    filter: Filter | None = None

    def canonical_dict(self) -> dict[str, Any]:
        return canonical_dict(self)

    def canonical_json(self) -> str:
        return canonical_json(self)

    def tools_used(self) -> tuple[str, ...]:
        return tuple(_canonical(self)[0])

    @property
    def is_empty(self) -> bool:
        return not _canonical(self)[0]


def canonical_dict(edit: Edit) -> dict[str, Any]:
    """The canonical form: zero parameters and do-nothing tools dropped, keys in contract order.

    A new dict on each call (the caller may change it); ``canonical_json`` is cached."""
    return _canonical_dict(edit)


# The canonical dict and JSON of recent edit objects, by object. One edit object is read several
# times per event in the worker (the served edit's signature, the label's look slice, then each
# table row it lands in: the prompt's, its reused label's, its accepted example's), and computing
# the canonical form was ~4% of the worker's main thread, canonical JSON the largest part of a
# row. Edits are frozen, so an object's canonical form never changes; an entry keeps its edit
# alive, so its id is not reused while the entry exists (``hit[0] is edit`` checks it anyway).
# Bounded, dropped oldest first; read from the event loop and the landing thread (each step is
# one dict operation, atomic under the GIL; a lost race recomputes, never returns another edit's).
# An entry: [edit, canonical dict, canonical JSON, sorted-keys canonical JSON].
_CANONICAL: OrderedDict[int, list[Any]] = OrderedDict()
_CANONICAL_LIMIT = 50_000


def _entry(edit: Edit) -> list[Any]:
    hit = _CANONICAL.get(id(edit))
    if hit is not None and hit[0] is edit:
        return hit
    canon = _canonical_dict(edit)
    entry = [edit, canon, *_canonical_texts(canon)]  # both at once: a served edit's signature needs the sorted one
    _CANONICAL[id(edit)] = entry
    if len(_CANONICAL) > _CANONICAL_LIMIT:
        try:
            _CANONICAL.popitem(last=False)
        except KeyError:  # emptied by the other thread meanwhile
            pass
    return entry


def _canonical(edit: Edit) -> tuple[dict[str, Any], str]:
    """(canonical dict, canonical JSON) of ``edit``, shared: the dict must not be changed."""
    entry = _entry(edit)
    return entry[1], entry[2]


SORTED_COMPACT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json_sorted(edit: Edit) -> str:
    """The canonical form as compact JSON with sorted keys (the served-edit signature's encoding,
    schemas/trust.py), cached per edit object like ``canonical_json``."""
    return str(_entry(edit)[3])


# The canonical dict's two JSON texts written out directly, both in one pass over its values: its
# shape is fixed (tool -> parameter -> integer; the filter's name from the closed catalogue, encoded
# once per name), and the encoders' per-call set-up was most of the cost of each text (the
# signature check makes both for every prompt). Anything outside that shape (a constructed edit holding a non-int) goes
# through the encoders. tests/test_schemas_edit.py compares both texts with the encoders'.
_NAME_JSON: dict[str, str] = {}
_CATALOGUE = frozenset(FILTER_NAMES)


def _ints(values: dict[str, Any]) -> list[str] | None:
    """``"key":value`` per entry, in the dict's order; None if a value is not an int."""
    parts = []
    for k, v in values.items():
        if type(v) is not int:
            return None
        parts.append(f'"{k}":{v}')
    return parts


def _filter_text(f: dict[str, Any], sort: bool) -> str | None:
    name, intensity = f["name"], f["intensity"]
    if type(name) is not str or type(intensity) is not int:
        return None
    text = _NAME_JSON.get(name)
    if text is None:
        text = COMPACT_JSON.encode(name)
        if name in _CATALOGUE:  # the catalogue is closed: this cache cannot grow past it
            _NAME_JSON[name] = text
    return f'{{"intensity":{intensity},"name":{text}}}' if sort else f'{{"name":{text},"intensity":{intensity}}}'


def _both(parts: list[str]) -> tuple[str, str]:
    # Sorting the ``"key":value`` texts sorts them by key: the keys of a canonical dict are the
    # contract's names (letters only, distinct), and where one is a prefix of another the shorter
    # one's closing quote sorts before the longer one's next letter, as the shorter key does.
    return "{" + ",".join(parts) + "}", "{" + ",".join(sorted(parts)) + "}"


def _texts(canon: dict[str, Any]) -> tuple[str, str] | None:
    """(compact, sorted-keys compact) JSON of a canonical dict, or None for a shape not written here."""
    compact, ordered = [], {}
    for tool in TOOLS:
        value = canon.get(tool)
        if value is None:
            continue
        if tool == "adjust":
            parts = _ints(value)
            if parts is None:
                return None
            texts = _both(parts)
        elif tool == "filter":
            plain, by_key = _filter_text(value, False), _filter_text(value, True)
            if plain is None or by_key is None:
                return None
            texts = (plain, by_key)
        else:
            plain_ranges, sorted_ranges = [], []
            for colour, shifts in value.items():
                parts = _ints(shifts)
                if parts is None:
                    return None
                plain_text, sorted_text = _both(parts)
                plain_ranges.append(f'"{colour}":{plain_text}')
                sorted_ranges.append(f'"{colour}":{sorted_text}')
            texts = ("{" + ",".join(plain_ranges) + "}", "{" + ",".join(sorted(sorted_ranges)) + "}")
        compact.append(f'"{tool}":{texts[0]}')
        ordered[tool] = f'"{tool}":{texts[1]}'
    return "{" + ",".join(compact) + "}", "{" + ",".join(ordered[t] for t in sorted(ordered)) + "}"


def _canonical_texts(canon: dict[str, Any]) -> tuple[str, str]:
    """``(COMPACT_JSON.encode(canon), SORTED_COMPACT_JSON.encode(canon))``."""
    texts = _texts(canon)
    return texts if texts is not None else (COMPACT_JSON.encode(canon), SORTED_COMPACT_JSON.encode(canon))


def _canonical_dict(edit: Edit) -> dict[str, Any]:
    # Field values read from each model's ``__dict__`` (every field is there, validated or
    # constructed), in the contract's order: a ``getattr`` per parameter, two per non-zero one, was
    # most of the cost of the served-edit signature check that runs for every prompt (streams/guard.py).
    out: dict[str, Any] = {}
    if edit.adjust is not None:
        values = edit.adjust.__dict__
        adjust = {p: v for p in ADJUST_PARAMS if (v := values[p])}
        if adjust:
            out["adjust"] = adjust
    if edit.selective_adjust is not None:
        ranges: dict[str, dict[str, int]] = {}
        by_colour = edit.selective_adjust.__dict__
        for colour in COLOUR_RANGES:
            rng = by_colour[colour]
            if rng is None:
                continue
            shifts = rng.__dict__
            channels = {c: v for c in HSL_CHANNELS if (v := shifts[c])}
            if channels:
                ranges[colour] = channels
        if ranges:
            out["selective_adjust"] = ranges
    if edit.filter is not None and edit.filter.intensity > 0:
        out["filter"] = {"name": edit.filter.name, "intensity": edit.filter.intensity}
    return out


# Compact JSON (no spaces, UTF-8 kept), built once: json.dumps with non-default options builds a
# new encoder on every call, which was a good part of the cost of landing a label row
# (warehouse/tables.py). Public: the join's changelog writer uses the same one.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical_json(edit: Edit) -> str:
    """Compact JSON of the canonical form; equal strings ⇔ edits that render the same."""
    return _canonical(edit)[1]


def adjust_vector(edit: Edit) -> list[int]:
    """The 14 adjust parameters in contract order; absent tool or parameter = 0."""
    if edit.adjust is None:
        return [0] * len(ADJUST_PARAMS)
    return [getattr(edit.adjust, p) for p in ADJUST_PARAMS]


def selective_vector(edit: Edit) -> list[int]:
    """The 24 selective-adjust values (8 ranges × hue, saturation, luminance); absent = 0."""
    values: list[int] = []
    for colour in COLOUR_RANGES:
        rng = getattr(edit.selective_adjust, colour) if edit.selective_adjust is not None else None
        values.extend(getattr(rng, c) if rng is not None else 0 for c in HSL_CHANNELS)
    return values


def look_slice(edit: Edit) -> str:
    """A coarse look family used to count data per slice: the filter name if a filter is used,
    else "adjust" / "selective" / "adjust+selective" by the tools used, else "none".
    The retrain trigger and the trainer's augmentation both count examples per slice with this.
    """
    canon = _canonical(edit)[0]
    if "filter" in canon:
        return str(canon["filter"]["name"])
    tools = [t for t in ("adjust", "selective_adjust") if t in canon]
    return "+".join("selective" if t == "selective_adjust" else t for t in tools) or "none"


EMPTY_EDIT = Edit()

"""The filter catalogue: the closed, versioned list of named looks the editor can render.

This is the only place filter names are written down. The editor owns how each look is rendered
(a generated 3D LUT per name); the teacher prompt, the student's classification head, the JSON
Schema for app producers and the repair policy all read the names from here.

Bump ``FILTER_CATALOGUE_VERSION`` whenever a name is added, removed or its meaning changes:
models trained on an older catalogue record the version they saw.
"""

from __future__ import annotations

from typing import NamedTuple

FILTER_CATALOGUE_VERSION = "2026.11.1"


class FilterLook(NamedTuple):
    name: str
    description: str


# Names follow the paper's app style (`family_Name`, e.g. "faded_HighNoon").
FILTERS: tuple[FilterLook, ...] = (
    FilterLook("faded_HighNoon", "washed-out, lifted blacks, slightly warm midday light"),
    FilterLook("warm_GoldenHour", "amber highlights, warm shadows, soft contrast"),
    FilterLook("cool_BlueHour", "deep blue shadows, cool highlights after sunset"),
    FilterLook("mono_Classic", "neutral black and white with gentle contrast"),
    FilterLook("mono_Noir", "hard-contrast black and white, crushed shadows"),
    FilterLook("mono_Sepia", "brown-toned monochrome, old print"),
    FilterLook("film_Portra", "soft, warm skin tones, gentle pastel colour negative"),
    FilterLook("film_Velvia", "saturated slide film, punchy greens and blues"),
    FilterLook("film_Kodachrome", "rich reds, deep blues, classic 1960s slide"),
    FilterLook("film_Cinestill", "tungsten film at night: cyan shadows, red halation tones"),
    FilterLook("film_Expired", "colour shifts and faded density of old film"),
    FilterLook("cine_TealOrange", "blockbuster grade: teal shadows, orange skin"),
    FilterLook("cine_BleachBypass", "desaturated, high contrast, silvery"),
    FilterLook("vintage_70s", "yellowed highlights, faded warm print"),
    FilterLook("vintage_Polaroid", "instant film: lifted blacks, cyan-green cast"),
    FilterLook("matte_Fade", "flat matte blacks, muted colours"),
    FilterLook("cross_Process", "slide film in negative chemistry: yellow-green highs, magenta lows"),
    FilterLook("cool_Nordic", "clean, cold, desaturated Scandinavian light"),
    FilterLook("warm_Desert", "dusty oranges and sand tones, heat haze"),
    FilterLook("pastel_Dream", "light, airy, low-contrast pastels"),
    FilterLook("moody_Forest", "dark, deep greens, cool shadows"),
    FilterLook("vivid_Pop", "bright, saturated, high-energy colour"),
    FilterLook("autumn_Leaves", "rich oranges and reds, warm browns"),
    FilterLook("winter_Frost", "icy blues, bright cold whites"),
    FilterLook("neon_Night", "magenta and cyan city lights, deep blacks"),
    FilterLook("tropical_Lush", "saturated turquoise water and greens"),
    FilterLook("dusty_Rose", "muted pinks and warm greys"),
    FilterLook("urban_Grit", "gritty, desaturated, cool street look"),
)

FILTER_NAMES: tuple[str, ...] = tuple(look.name for look in FILTERS)


def normalise_filter_name(name: str) -> str | None:
    """Map a near-miss spelling ("Warm GoldenHour", "warm-goldenhour") to a catalogue name.

    Returns None when nothing in the catalogue matches; the repair policy then drops the filter.
    """
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    for known in FILTER_NAMES:
        if "".join(ch for ch in known.lower() if ch.isalnum()) == key:
            return known
    return None

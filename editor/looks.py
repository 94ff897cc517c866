"""The recipe of every look in the filter catalogue (``schemas.filters.FILTERS``).

The catalogue's names and descriptions are the spec; each recipe below realises its description
with the ops in ``editor.lookops`` (our own adjust chain, curves, fades, split toning, mono mixes,
gradient maps). Looks are authored for display-referred sRGB in and out, like HaldCLUT packs,
and baked to 33³ .cube files by ``editor.cube`` (no third-party LUTs, so no licence burden).
Bump ``RECIPE_VERSION`` when any recipe changes: it is part of every cached file's key.
"""

from __future__ import annotations

from editor.lookops import Curves, Fade, GradientMap, Mono, Recipe, SplitTone, adjust
from schemas.filters import FILTERS

RECIPE_VERSION = "1"

_OPS: dict[str, tuple[object, ...]] = {
    # washed-out, lifted blacks, slightly warm midday light
    "faded_HighNoon": (adjust(contrast=-25, temperature=15, saturation=-15, brightness=10),
                       Fade(black=(0.13, 0.12, 0.10), white=(0.98, 0.97, 0.94))),
    # amber highlights, warm shadows, soft contrast
    "warm_GoldenHour": (adjust(temperature=55, tint=8, contrast=-15, highlights=-10, vibrance=15),
                        SplitTone(shadows=(0.04, 0.01, -0.04), highlights=(0.08, 0.035, -0.08))),
    # deep blue shadows, cool highlights after sunset
    "cool_BlueHour": (adjust(temperature=-55, exposure=-15, contrast=10, saturation=10),
                      SplitTone(shadows=(-0.05, -0.01, 0.10), highlights=(-0.03, 0.0, 0.04))),
    # neutral black and white with gentle contrast
    "mono_Classic": (Mono(), adjust(contrast=20)),
    # hard-contrast black and white, crushed shadows
    "mono_Noir": (Mono((0.5, 0.4, 0.1)), adjust(contrast=80, shadows=-40),
                  Curves(master=((0.0, 0.0), (0.12, 0.0), (0.5, 0.45), (1.0, 1.0)))),
    # brown-toned monochrome, old print
    "mono_Sepia": (Mono(), adjust(contrast=-10),
                   GradientMap(stops=((0.0, (0.09, 0.05, 0.03)), (0.5, (0.58, 0.44, 0.30)),
                                      (1.0, (1.0, 0.95, 0.84)))),
                   Fade(black=(0.04, 0.03, 0.02))),
    # soft, warm skin tones, gentle pastel colour negative
    "film_Portra": (adjust(contrast=-20, temperature=12, saturation=-12, highlights=-15,
                           selective={"orange": {"saturation": 10, "luminance": 8},
                                      "green": {"saturation": -15, "hue": -10}}),
                    Fade(black=(0.05, 0.045, 0.04))),
    # saturated slide film, punchy greens and blues
    "film_Velvia": (adjust(contrast=30, saturation=35, vibrance=25, shadows=-15,
                           selective={"green": {"saturation": 30}, "blue": {"saturation": 30, "luminance": -10}}),),
    # rich reds, deep blues, classic 1960s slide
    "film_Kodachrome": (adjust(contrast=25, saturation=15, temperature=8,
                               selective={"red": {"saturation": 35, "luminance": -10},
                                          "blue": {"saturation": 25, "luminance": -20},
                                          "yellow": {"hue": -10}}),
                        Curves(master=((0.0, 0.02), (0.5, 0.5), (1.0, 0.98)))),
    # tungsten film at night: cyan shadows, red halation tones
    "film_Cinestill": (adjust(temperature=-30, contrast=15, selective={"red": {"saturation": 25}}),
                       SplitTone(shadows=(-0.06, 0.03, 0.05), highlights=(0.09, 0.0, -0.03))),
    # colour shifts and faded density of old film
    "film_Expired": (adjust(saturation=-25, contrast=-15),
                     Curves(r=((0.0, 0.07), (0.5, 0.56), (1.0, 0.95)),
                            g=((0.0, 0.04), (0.5, 0.49), (1.0, 0.92)),
                            b=((0.0, 0.11), (0.5, 0.43), (1.0, 0.82)))),
    # blockbuster grade: teal shadows, orange skin
    "cine_TealOrange": (adjust(contrast=20, selective={
                            "blue": {"hue": -40}, "green": {"hue": 40, "saturation": -20},
                            "yellow": {"hue": -30}, "orange": {"saturation": 20}}),
                        SplitTone(shadows=(-0.12, 0.03, 0.09), highlights=(0.06, 0.02, -0.06))),
    # desaturated, high contrast, silvery
    "cine_BleachBypass": (adjust(saturation=-60, contrast=75, shadows=-25, highlights=15, temperature=-5),
                          Fade(black=(0.02, 0.02, 0.025))),
    # yellowed highlights, faded warm print
    "vintage_70s": (adjust(saturation=-20, temperature=25, contrast=-15),
                    Curves(r=((0.0, 0.08), (1.0, 1.0)), g=((0.0, 0.06), (1.0, 0.96)),
                           b=((0.0, 0.05), (0.5, 0.42), (1.0, 0.78)))),
    # instant film: lifted blacks, cyan-green cast
    "vintage_Polaroid": (adjust(contrast=-10, saturation=-15),
                         Curves(r=((0.0, 0.05), (0.5, 0.46), (1.0, 0.94)),
                                g=((0.0, 0.11), (0.5, 0.53), (1.0, 0.99)),
                                b=((0.0, 0.12), (0.5, 0.51), (1.0, 0.92)))),
    # flat matte blacks, muted colours
    "matte_Fade": (adjust(saturation=-30, contrast=-15),
                   Curves(master=((0.0, 0.15), (0.25, 0.29), (1.0, 0.96)))),
    # slide film in negative chemistry: yellow-green highs, magenta lows
    "cross_Process": (Curves(r=((0.0, 0.06), (0.3, 0.26), (0.7, 0.8), (1.0, 1.0)),
                             g=((0.0, 0.0), (0.3, 0.22), (0.7, 0.8), (1.0, 1.0)),
                             b=((0.0, 0.16), (0.5, 0.47), (1.0, 0.76))),
                      adjust(saturation=20, contrast=10)),
    # clean, cold, desaturated Scandinavian light
    "cool_Nordic": (adjust(temperature=-65, saturation=-35, brightness=12, contrast=-5, exposure=10),
                    SplitTone(shadows=(-0.03, 0.0, 0.04), highlights=(-0.03, 0.0, 0.03)),
                    Fade(black=(0.03, 0.035, 0.05))),
    # dusty oranges and sand tones, heat haze
    "warm_Desert": (adjust(temperature=45, tint=5, saturation=-10, contrast=-10, highlights=-15,
                           selective={"orange": {"saturation": 20, "luminance": 10}, "yellow": {"hue": -20},
                                      "blue": {"saturation": -40}, "green": {"saturation": -40}}),
                    Fade(black=(0.07, 0.055, 0.04))),
    # light, airy, low-contrast pastels
    "pastel_Dream": (adjust(brightness=30, contrast=-40, saturation=-20, highlights=-10),
                     Fade(black=(0.16, 0.14, 0.17)),
                     SplitTone(shadows=(0.02, 0.0, 0.05), highlights=(0.03, 0.0, 0.03))),
    # dark, deep greens, cool shadows
    "moody_Forest": (adjust(exposure=-25, contrast=15, saturation=-10, temperature=-10, highlights=-20,
                            selective={"green": {"saturation": 15, "luminance": -25, "hue": -10},
                                       "yellow": {"hue": 20, "luminance": -15}}),
                     SplitTone(shadows=(-0.03, 0.01, 0.03))),
    # bright, saturated, high-energy colour
    "vivid_Pop": (adjust(saturation=45, vibrance=30, contrast=30, brightness=10),),
    # rich oranges and reds, warm browns
    "autumn_Leaves": (adjust(temperature=25, saturation=10, contrast=10,
                             selective={"orange": {"saturation": 35}, "red": {"saturation": 25},
                                        "yellow": {"hue": -40, "saturation": 20},
                                        "green": {"hue": -50, "saturation": -20}}),),
    # icy blues, bright cold whites
    "winter_Frost": (adjust(temperature=-80, exposure=15, saturation=-30, highlights=10, brightness=15,
                            selective={"blue": {"saturation": 20, "luminance": 10}}),
                     SplitTone(shadows=(-0.04, 0.0, 0.06), highlights=(-0.05, 0.0, 0.05))),
    # magenta and cyan city lights, deep blacks
    "neon_Night": (adjust(contrast=35, shadows=-35, saturation=30,
                          selective={"magenta": {"saturation": 40}, "purple": {"hue": 30},
                                     "blue": {"hue": -30, "saturation": 30}, "cyan": {"saturation": 40}}),
                   SplitTone(shadows=(0.06, -0.03, 0.06), highlights=(-0.05, 0.02, 0.05))),
    # saturated turquoise water and greens
    "tropical_Lush": (adjust(saturation=25, vibrance=35, brightness=10, temperature=5,
                             selective={"cyan": {"saturation": 40, "hue": -10},
                                        "blue": {"hue": -25, "saturation": 20},
                                        "green": {"saturation": 30, "hue": 15}}),),
    # muted pinks and warm greys
    "dusty_Rose": (adjust(saturation=-55, contrast=-15, tint=20, temperature=8,
                          selective={"red": {"hue": 20}, "magenta": {"hue": -15}}),
                   SplitTone(shadows=(0.02, 0.0, 0.0), highlights=(0.05, -0.01, 0.02)),
                   Fade(black=(0.06, 0.05, 0.05))),
    # gritty, desaturated, cool street look
    "urban_Grit": (adjust(saturation=-45, contrast=40, temperature=-20, shadows=-15, highlights=-20),
                   Fade(black=(0.04, 0.04, 0.05)), SplitTone(shadows=(-0.02, 0.0, 0.03))),
}

RECIPES: dict[str, Recipe] = {look.name: Recipe(look.name, look.description, _OPS[look.name]) for look in FILTERS}

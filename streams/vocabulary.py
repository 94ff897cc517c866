"""What simulated users type: look requests, explicit adjustment requests, and their typos.

Looks: base intents are drawn Zipf-like (a few looks are very popular, most are rare), then dressed
in a template, an optional modifier, case noise and typos, so one intent reaches the pipeline under
many surface forms, as in a real app.

Explicit requests ("increase the contrast a little, and make it warmer"): one to three clauses,
each an (attribute, direction, amount) drawn from the grammar below and phrased one of several ways
(a verb and a noun, a comparative, "brightness up", a complaint such as "it's too dark", "not so
dark", "by 20%", a colour on an object: "make the sky bluer"). What each clause means is known
exactly: ``ExplicitRequest.adjustments``, mapped to an edit by the teacher's adjustment table
(``teacher/adjustments.py``), so the simulated user's hidden intent does not depend on how well any
teacher reads the words.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from teacher.adjustments import AMOUNTS, PERCENT_AT_ONE, Adjustment

INTENTS: tuple[str, ...] = (
    "golden hour", "moody", "black and white", "vintage", "warm", "cool tone", "cinematic", "Morocco",
    "sunset", "film look", "brighter", "more contrast", "pastel", "teal and orange", "autumn", "winter",
    "summer vibes", "noir", "dreamy", "faded", "vibrant", "desaturated", "blue hour", "foggy morning",
    "rainy day", "neon city", "tropical beach", "desert", "forest", "snowy mountains", "Paris", "Tokyo",
    "Iceland", "Tuscany", "Santorini", "New York at night", "Kodak Portra", "Fuji Velvia", "polaroid",
    "70s film", "80s retro", "sepia", "matte", "high key", "low key", "dark and moody", "clean and bright",
    "soft skin tones", "punchy colours", "muted greens", "more teal", "less saturated", "warmer", "cooler",
    "darker", "lift the shadows", "recover highlights", "sharper", "softer", "glow", "dramatic sky",
    "candlelight", "moonlight", "spring blossom", "cyberpunk", "horror movie", "romantic", "nostalgic",
    "documentary", "fashion editorial", "wedding", "food photo", "underwater", "night street", "overcast",
    "midday sun", "cross processed", "bleach bypass", "instagram look", "wes anderson", "blade runner",
    "matrix green", "western", "scandinavian", "lush greens", "pink sky", "cosy indoor", "harsh sunlight",
    "misty lake", "gloomy", "cheerful", "calm", "epic landscape", "urban grit", "retro postcard",
)
TEMPLATES: tuple[str, ...] = (
    "{x}", "{x}", "{x}", "make it {x}", "{x} look", "{x} vibes", "give me {x}", "{x} please",
    "something {x}", "{x} style", "like {x}", "can you make this {x}", "i want {x}", "{x} feel",
)
MODIFIERS: tuple[str, ...] = ("", "", "", "", "", "slightly ", "very ", "a bit ", "more ", "super ", "not too ")


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1.0 / (rank ** s) for rank in range(1, n + 1)]


def typo(text: str, rng: random.Random) -> str:
    """One keyboard-style slip: drop, double, or swap adjacent letters."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[1:-1])
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1:]
    if kind == 1:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def surface_form(intent: str, rng: random.Random, typo_rate: float = 0.08, *, framed: bool = True) -> str:
    """One way a user might type ``intent``; ``framed=False`` adds only case noise and typos."""
    text = rng.choice(TEMPLATES).format(x=rng.choice(MODIFIERS) + intent) if framed else intent
    roll = rng.random()
    if roll < 0.1:
        text = text.upper()
    elif roll < 0.3:
        text = text.capitalize()
    if rng.random() < typo_rate:
        text = typo(text, rng)
    return text


# Look phrases in app framings (the trainer's simulated datasets, ``streams.simulator.generate_prompts``).
FRAMES: tuple[str, ...] = ("{p}", "make it {p}", "{p} please", "give it a {p} look", "{p} vibe", "i want {p}",
                           "{p} style", "go for {p}", "can you make this {p}", "{p} feel")


@dataclass(frozen=True)
class Phrasing:
    """How people name one attribute of the adjustment table."""

    nouns: tuple[str, ...]  # "brightness": takes a verb ("increase the brightness")
    more: tuple[str, ...] = ()  # comparatives for more of it ("brighter")
    less: tuple[str, ...] = ()  # comparatives for less of it ("darker")
    high: str = ""  # the state of too much ("bright": "it's too bright" asks for less)
    low: str = ""  # the state of too little ("dark": "it's too dark" asks for more)
    objects: tuple[str, ...] = ()  # named colours: where the colour usually is ("sky")


PHRASINGS: dict[str, Phrasing] = {
    "brightness": Phrasing(("brightness", "overall brightness", "lightness"), ("brighter", "lighter"),
                           ("darker", "dimmer"), "bright", "dark"),
    "exposure": Phrasing(("exposure",)),
    "contrast": Phrasing(("contrast",), ("punchier", "more contrasty"), ("flatter",), "contrasty", "flat"),
    "saturation": Phrasing(("saturation", "colour saturation", "color saturation"),
                           ("more saturated", "more vivid", "more colourful"), ("less saturated", "more muted"),
                           "saturated", "dull"),
    "vibrance": Phrasing(("vibrance",), ("more vibrant",), ("less vibrant",)),
    "warmth": Phrasing(("warmth", "temperature"), ("warmer",), ("cooler", "colder"), "warm", "cold"),
    "shadows": Phrasing(("shadows", "dark areas")),
    "highlights": Phrasing(("highlights", "bright areas")),
    "sharpness": Phrasing(("sharpness", "detail"), ("sharper", "crisper"), ("softer",), "sharp", "blurry"),
    "clarity": Phrasing(("clarity",), ("clearer",)),
    "blue": Phrasing(("blue", "blues"), ("bluer",), (), "blue", objects=("sky", "sea", "water")),
    "green": Phrasing(("green", "greens"), ("greener",), (), "green", objects=("grass", "trees", "leaves")),
    "red": Phrasing(("red", "reds"), ("redder",), (), "red", objects=("flowers", "lips")),
    "yellow": Phrasing(("yellow", "yellows"), ("yellower",), (), "yellow", objects=("flowers", "sand")),
    "orange": Phrasing(("orange", "oranges"), (), (), "orange", objects=("sunset",)),
    "cyan": Phrasing(("teal", "cyan"), (), (), "teal", objects=("water", "sea")),
    "magenta": Phrasing(("pink", "magenta"), ("pinker",), (), "pink", objects=("flowers", "sky")),
    "purple": Phrasing(("purple", "violet"), (), (), "purple", objects=("flowers",)),
}
UP_VERBS: tuple[str, ...] = ("increase", "raise", "boost", "bump up", "turn up", "add more", "push", "enhance",
                             "up")
DOWN_VERBS: tuple[str, ...] = ("decrease", "reduce", "lower", "tone down", "turn down", "cut", "pull back",
                               "bring down", "less")
# Amount words users put on a clause; what each means is the adjustment table's number for it.
AMOUNT_WORDS: tuple[str, ...] = ("", "", "", "slightly", "a little", "a bit", "a touch", "a tiny bit", "a lot",
                                 "much", "significantly")
PERCENTS: tuple[int, ...] = (10, 20, 30, 50)
JOINERS: tuple[str, ...] = (", ", " and ", "; ", ", then ", ". ", " and also ", ", and ")


@dataclass(frozen=True)
class ExplicitRequest:
    text: str
    adjustments: tuple[Adjustment, ...]  # what the user means, exactly


def _amount_of(word: str) -> float:
    return AMOUNTS[word] if word else 1.0


def _verb_phrase(verb: str, noun: str) -> str:
    return f"{verb} {noun}" if verb in ("less", "add more") else f"{verb} the {noun}"


def explicit_clause(attribute: str, sign: int, rng: random.Random) -> tuple[str, Adjustment]:
    """One clause asking for more (+1) or less (-1) of ``attribute``, and what it means."""
    ph = PHRASINGS[attribute]
    noun = rng.choice(ph.nouns)
    word = rng.choice(AMOUNT_WORDS)
    amount = _amount_of(word)
    comparatives = ph.more if sign > 0 else ph.less
    state = ph.low if sign > 0 else ph.high  # "too dark" asks for more brightness
    forms = ["verb", "verb_first", "noun_particle", "percent"]
    if comparatives:
        forms += ["comparative", "make_comparative"]
    if state:
        forms += ["too", "not_so", "more_less"]
    if ph.objects and sign > 0 and ph.more:
        forms += ["object", "object"]
    form = rng.choice(forms)
    local = False
    verb = rng.choice(UP_VERBS if sign > 0 else DOWN_VERBS)
    if form == "verb":
        text = _verb_phrase(verb, noun) + (f" {word}" if word else "")
    elif form == "verb_first":
        verb = rng.choice([v for v in (UP_VERBS if sign > 0 else DOWN_VERBS) if v != "up"])
        if word in ("much", "a lot", "significantly", "a tiny bit"):  # "reduce contrast a lot", not "a lot reduce"
            text = f"{verb} {noun} {word}"
        else:
            text = (f"{word} " if word else "") + f"{verb} {noun}"
    elif form == "noun_particle":
        text, amount = f"{noun} {'up' if sign > 0 else 'down'}", 1.0
    elif form == "percent":
        pct = rng.choice(PERCENTS)
        verb = rng.choice([v for v in (UP_VERBS if sign > 0 else DOWN_VERBS) if v not in ("up", "less")])
        text, amount = f"{_verb_phrase(verb, noun)} by {pct}%", max(0.45, min(2.5, pct / PERCENT_AT_ONE))
    elif form == "comparative":
        text = (f"{word} " if word else "") + rng.choice(comparatives)
    elif form == "make_comparative":
        text = f"make it {word + ' ' if word else ''}{rng.choice(comparatives)}"
    elif form == "too":
        text, amount = f"{rng.choice(('it is', 'the photo is', 'it looks', 'way'))} too {state}", 1.0
    elif form == "not_so":
        text, amount = f"make it not so {state}", 1.0
    elif form == "more_less":  # "less bright" / "more dark": the state word with more or less in front
        other = ph.high if sign > 0 else ph.low
        option = rng.choice([f"less {state}"] + ([f"more {other}"] if other else []))
        frames = ("", "make the image ", "make the photo ", "make it ")
        text = rng.choice(frames) + (f"{word} " if word else "") + option
    else:  # a colour on an object: "make the sky bluer", "greener grass"
        obj = rng.choice(ph.objects)
        comparative = rng.choice(ph.more)
        text = f"make the {obj} {comparative}" if rng.random() < 0.5 else f"{comparative} {obj}"
        text, local = (f"{word} " if word else "") + text, True
    return text, Adjustment(attribute, sign, amount, local=local)


def explicit_request(rng: random.Random, max_clauses: int = 3) -> ExplicitRequest:
    """One to three clauses about different attributes, joined the ways people join them."""
    k = rng.choices((1, 2, 3), weights=(0.5, 0.35, 0.15))[0]
    attributes = rng.sample(sorted(PHRASINGS), min(k, max_clauses))
    clauses = [explicit_clause(a, rng.choice((1, -1)), rng) for a in attributes]
    text = clauses[0][0]
    for clause, _ in clauses[1:]:
        text += rng.choice(JOINERS) + clause
    if rng.random() < 0.15:
        text = rng.choice(("please ", "can you ", "could you ")) + text
    return ExplicitRequest(text, tuple(adj for _, adj in clauses))


# Used when the shared real-request pool is not there: requests of the kind people type, written
# for this list (none is taken from the shared files).
BUILTIN_REAL_REQUESTS: tuple[str, ...] = (
    "make the picture a bit brighter", "the photo is too dark, lighten it", "more contrast please",
    "can you tone down the colours a little", "increase saturation and sharpen the image",
    "warm it up slightly, the skin looks too blue", "brighten the shadows without touching the sky",
    "it looks washed out, add some punch", "reduce the exposure, the sky is blown out",
    "make the grass greener and the sky bluer", "lower the brightness and add a bit of warmth",
    "Sharpen the photo and increase the contrast a little bit.", "less yellow please",
    "make the colours pop", "cooler tones and a little more contrast", "add a vintage film feel",
    "give it a moody look but keep it bright", "brighten it up and remove the person on the left",
    "darken the image slightly", "Increase brightness by 20%", "the image is too saturated",
    "make it look like a sunny summer day", "soften the picture a bit", "boost the vibrance",
    "fix the white balance and brighten", "make the highlights less harsh", "a little less red in the faces",
)


def shared_pool(directory: Path | None) -> tuple[str, ...]:
    """The requests of ``pool.txt`` in ``directory`` (real users' words); () when it is absent or empty."""
    path = directory / "pool.txt" if directory is not None else None
    if path is None or not path.is_file():
        return ()
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def real_requests(directory: Path | None) -> tuple[str, ...]:
    """The shared pool of real requests (``shared_pool``) or, without one, the built-in list."""
    return shared_pool(directory) or BUILTIN_REAL_REQUESTS

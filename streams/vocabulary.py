"""What simulated users type: look requests, the ways people phrase them, and their typos.

Base intents are drawn Zipf-like (a few looks are very popular, most are rare), then dressed in a
template, an optional modifier, case noise and typos, so one intent reaches the pipeline under
many surface forms, as in a real app.
"""

from __future__ import annotations

import random

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


def surface_form(intent: str, rng: random.Random, typo_rate: float = 0.08) -> str:
    """One way a user might type ``intent``."""
    text = rng.choice(TEMPLATES).format(x=rng.choice(MODIFIERS) + intent)
    roll = rng.random()
    if roll < 0.1:
        text = text.upper()
    elif roll < 0.3:
        text = text.capitalize()
    if rng.random() < typo_rate:
        text = typo(text, rng)
    return text

"""Reading a look request before it is matched: clauses, modifiers and typos.

"make it slightly warmer and a lot moodier" becomes two clauses, ("warmer", 0.5) and
("moodier", 1.5): the text each clause is matched on and the factor its look is scaled by. A
negative factor ("less moody", "not so bright") asks for the opposite of the look.

Everything here is pure string work, deterministic and fast; the matching is in ``offline.py``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.text import normalise_prompt

# Multi-word modifiers first: the first matching alternative wins in the regex below.
MODIFIERS: dict[str, float] = {
    "as much as possible": 1.8, "a whole lot": 1.6, "way more": 1.5, "much more": 1.5, "a lot more": 1.5,
    "a lot": 1.5, "lots of": 1.5, "tons of": 1.5, "a tiny bit": 0.35, "tiny bit": 0.35,
    "very slightly": 0.35, "a hint of": 0.35, "hint of": 0.35, "a touch of": 0.4, "a touch": 0.4,
    "touch of": 0.4, "a little bit": 0.45, "a little": 0.5, "a bit": 0.5, "a tad": 0.45,
    "kind of": 0.6, "sort of": 0.6, "not too": 0.5, "not overly": 0.5, "not so": -0.5, "not as": -0.5,
    "a bit less": -0.3, "a little less": -0.3, "slightly less": -0.3, "much less": -0.9,
    "extremely": 1.8, "insanely": 1.8, "maximum": 1.8, "max": 1.8, "ultra": 1.6, "super": 1.5,
    "very": 1.5, "really": 1.4, "so": 1.3, "strongly": 1.5, "heavily": 1.5, "heavy": 1.4,
    "intensely": 1.5, "totally": 1.4, "seriously": 1.4, "more": 1.0, "extra": 1.3, "bit": 0.5,
    "slightly": 0.5, "slight": 0.5, "somewhat": 0.6, "subtle": 0.5, "subtly": 0.5, "mildly": 0.5,
    "mild": 0.5, "gently": 0.5, "lightly": 0.5, "barely": 0.3, "less": -0.6, "fewer": -0.6,
    "not": -0.5, "no": -0.5, "without": -0.5, "too much": -0.6, "too": -0.6, "tone down": -0.6,
    "turn down": -0.6, "dial back": -0.6, "dial down": -0.6, "pull back": -0.6, "remove some": -0.6, "lower": -0.6, "reduce": -0.6, "decrease": -0.6,
}
# A clause that is a library phrase verbatim ("reduce contrast", "less green") is taken whole,
# before any modifier is read out of it.

# Words that carry no look: stripped so "make the photo look moodier" matches "moodier". "add" stays:
# "add a hat" must still read as an object request, and "add warmth" matches either way.
_FILLER = re.compile(
    r"^(?:(?:please|pls|can you|could you|would you|i want|i'd like|i would like|give me|give it|"
    r"make it|make this|make the (?:photo|picture|image|pic|shot|video|clip)|make|turn it(?: into)?|"
    r"let's go|go|try|apply|use|look|like|a|an|the|it|some|bit of|feel|vibes?)\s+)+"
)
_TRAILING = re.compile(r"\s+(?:please|look|vibes?|feel|feeling|style|effect|mood|tones?|filter|edit|grade|"
                       r"aesthetic|photo|picture|image|pic|colou?r grading|please)$")
_SPLIT = re.compile(r"\s*(?:,|;|\band then\b|\bthen\b|\band\b|&|\+|\bbut\b|\bplus\b|\bwith\b|\balso\b)\s*")
_MODIFIER_RE = re.compile(r"\b(?:" + "|".join(re.escape(m) for m in sorted(MODIFIERS, key=len, reverse=True))
                          + r")\b")
# Words that never name a look on their own; the rest of a multi-word clause is matched word by word.
STOPWORDS = frozenset(
    ["the", "and", "for", "with", "from", "into", "onto", "this", "that", "these", "those", "your", "my", "our", "his", "her", "its", "their", "look", "looks", "like", "photo", "photos", "picture", "image", "pic", "shot", "shots", "scene", "style", "vibe", "vibes", "feel", "feeling", "mood", "tone", "tones", "colour", "color", "colours", "colors", "lighting", "light", "edit", "filter", "effect", "please", "make", "made", "some", "very", "more", "less", "day", "time", "way", "just", "bit", "lot"]
)
_WORD = re.compile(r"[a-z][a-z'&-]*")
_GLUE = "_"  # a word character, so `\band\b` cannot match inside a glued protected phrase


MIN_SCALE, MAX_SCALE = -1.2, 2.0


@dataclass(frozen=True)
class Clause:
    text: str  # what is matched against the library
    scale: float  # product of the modifiers; negative = the opposite of the look
    raw: str  # the clause as typed (after normalisation), for exact-phrase lookups
    words: tuple[str, ...] = ()  # content words, matched one by one for multi-concept clauses


class PromptReader:
    """Turns prompts into clauses. Built once per library (it learns the library's phrases)."""

    def __init__(self, phrases: Iterable[str], known_words: Iterable[str] = (), extra_words: Iterable[str] = ()) -> None:
        self.phrases = {normalise_prompt(p) for p in phrases}
        # Library phrases that contain a splitter ("black and white") must survive splitting.
        self._protected = sorted((p for p in self.phrases if _SPLIT.search(p)), key=len, reverse=True)
        # ``extra_words`` (the adjustment table's) are typo targets too: "brigthness" -> "brightness".
        self._lexicon = sorted({w for p in self.phrases for w in _WORD.findall(p)} | set(MODIFIERS) | set(extra_words))
        self._lexicon_set = set(self._lexicon)
        self._known = set(known_words)
        self._fixed: dict[str, str] = {}

    def fix_typos(self, text: str) -> str:
        """Replace words nobody spells that way ("goldn", "cinamatic") by the closest library word.

        A word is left alone when the library or the tokenizer's vocabulary knows it, so real words
        ("dog") are never "corrected" into looks ("fog").
        """
        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            if len(word) < 4 or word in self._lexicon_set or word in self._known:
                return word
            if word not in self._fixed:  # difflib is slow and unknown words repeat: decide once per word
                close = difflib.get_close_matches(word, self._lexicon, n=3, cutoff=0.8)
                # A slip drops, doubles or swaps a letter: a candidate two letters longer or shorter
                # is another word ("pallet" is not "pale").
                close = [c for c in close if abs(len(c) - len(word)) <= 1]
                if len(self._fixed) > 100_000:
                    self._fixed.clear()
                self._fixed[word] = close[0] if close else word
            return self._fixed[word]

        return _WORD.sub(fix, text)

    def read(self, prompt: str) -> list[Clause]:
        """Clauses of ``prompt``, in order; clauses left with no words fold into a neighbour."""
        text = self.fix_typos(normalise_prompt(prompt))
        if text in self.phrases:
            return [Clause(text, 1.0, text)]
        for phrase in self._protected:
            text = re.sub(rf"\b{re.escape(phrase)}\b", phrase.replace(" ", _GLUE), text)
        clauses: list[Clause] = []
        pending = 1.0  # modifiers seen in a clause with no look yet ("very, very warm")
        for part in (p for p in _SPLIT.split(text) if p):
            raw = part.replace(_GLUE, " ").strip()
            scale = pending
            pending = 1.0
            if raw in self.phrases:
                clauses.append(Clause(raw, scale, raw))
                continue
            core = raw
            for modifier in _MODIFIER_RE.findall(raw):
                scale *= MODIFIERS[modifier]
            core = _MODIFIER_RE.sub(" ", core)
            core = re.sub(r"\s+", " ", core).strip()
            core = _TRAILING.sub("", _FILLER.sub("", core + " ").strip()).strip() if core else ""
            if not core or core in ("it", "this"):
                if clauses:  # "golden hour, slightly": the modifier belongs to the previous clause
                    last = clauses[-1]
                    clauses[-1] = Clause(last.text, last.scale * scale, last.raw)
                else:
                    pending = scale
                continue
            words = tuple(dict.fromkeys(
                w for w in _WORD.findall(core) if len(w) >= 3 and w not in STOPWORDS
            )) if " " in core else ()
            clauses.append(Clause(core, scale, raw, words))
        # "very very very warm" should not blow every parameter to the rails.
        return [Clause(c.text, max(MIN_SCALE, min(MAX_SCALE, c.scale)), c.raw, c.words) for c in clauses]

"""Intent groups: the unit that goes to one split, derived from the prompts themselves.

Real traffic carries no intent id, and one intent reaches us as many surface forms ("golden hour",
"Make it golden hour", "a bit more golden hour please", "goldne hour"). Splitting by the normalised
prompt put those in different splits, so the test set measured memory of wordings seen in
training. Here the split unit is a *group*, built in two steps:

1. ``intent_key``: the normalised prompt without its framing and modifier words (``FRAME_WORDS``:
   "make it", "look", "please", "slightly", "a bit", ...). Surface forms that differ only by
   template, modifier, case or punctuation get the same key.
2. Typos: keys of at least ``MIN_TYPO_CHARS`` characters that are one edit apart (a dropped,
   doubled, swapped or replaced letter: they share a single-deletion variant) are joined, and
   the joins are closed transitively (connected components, union-find). A key that is another
   key plus one short word (≤ 3 letters) at either end ("iit warm", "desert fel": a mangled
   framing word) joins that key too.

A group is named by its most frequent key (ties: the alphabetically first), so a rare typo joining
a group never renames it, and the group's split is a hash of that name (``bucket_split``): adding
data never moves an existing group unless new rows join two groups. Deterministic, no model
needed, so a snapshot's splits can be recomputed anywhere.

*Looks* are coarser than intents: two different intents ("sunset", "golden hour") may ask for the
same look. ``look_subsets`` therefore splits a test set into *seen looks, new wording* (what the
row asks for, read by the noise-free teacher, ``trainer.look_keys``, is also asked for by some
training row of another group) and *unseen looks*.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

Split = Literal["train", "validation", "test"]
_BUCKETS = 10_000
MIN_TYPO_CHARS = 6  # shorter keys are too close to each other ("warm"/"worm") to join on one edit
GROUPING_VERSION = "g2"  # bump when the rule changes: it is part of every snapshot id (g2: CONTENT_WORDS)

FRAME_WORDS: frozenset[str] = frozenset((
    # request templates
    "make", "it", "this", "that", "the", "photo", "image", "picture", "pic", "look", "looks", "looking",
    "vibe", "vibes", "give", "me", "please", "pls", "something", "style", "styled", "like", "can", "could",
    "you", "i", "want", "would", "feel", "feeling", "go", "for", "try", "apply", "add", "a", "an", "of",
    "with", "some", "kind", "sort", "get", "let's", "lets", "us", "to", "into", "as", "just",
    # modifiers of strength
    "slightly", "slight", "very", "bit", "little", "more", "super", "not", "too", "really", "much",
    "extra", "lot", "touch", "tad", "somewhat", "quite", "so", "way", "subtle", "subtly", "extremely", "rather",
))
_WORD = re.compile(r"[\w']+")


def bucket_split(key: str, test_fraction: float, val_fraction: float) -> Split:
    """Deterministic split by hash: [0, test) → test, [test, test+val) → validation, else train."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % _BUCKETS
    if bucket < test_fraction * _BUCKETS:
        return "test"
    if bucket < (test_fraction + val_fraction) * _BUCKETS:
        return "validation"
    return "train"


def _deletions(key: str) -> set[str]:
    return {key[:i] + key[i + 1:] for i in range(len(key))}


def _swaps(word: str) -> set[str]:
    return {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}


# Typos of framing words ("makke", "somethng", "pleae", "lok") are framing too. Only slips that
# keep the word recognisable count: one letter doubled or inserted, one dropped from a word of at
# least 5 letters, two neighbours swapped. Not a replaced letter: "lake" is not "like".
# Words that look like a slip of a framing word but are words of the looks themselves: "light" is
# "slight" less a letter, "cold" is "could", "quiet" is "quite", "epic" is "pic" plus one. Read as
# framing, "golden light" lost its second word and fell into the golden group (g1). The test
# ``test_no_look_word_is_framing`` checks every word of the look library and of the traffic's
# intents against this rule, so a new look word that collides fails there, not silently.
CONTENT_WORDS: frozenset[str] = frozenset(("light", "cold", "quiet", "epic"))
_FRAME_TYPOS: frozenset[str] = frozenset(
    {t for w in FRAME_WORDS if len(w) >= 4 for t in _swaps(w)}
    | {t for w in FRAME_WORDS if len(w) >= 5 for t in _deletions(w)}) - CONTENT_WORDS


def _is_frame(word: str) -> bool:
    if word in CONTENT_WORDS:
        return False
    if word in FRAME_WORDS or word in _FRAME_TYPOS:
        return True
    return len(word) >= 4 and any(d in FRAME_WORDS and len(d) >= 3 for d in _deletions(word))


def intent_key(prompt_norm: str) -> str:
    """The normalised prompt minus framing/modifier words (itself when nothing else is left)."""
    words = [w for w in _WORD.findall(prompt_norm) if not _is_frame(w)]
    return " ".join(words) or prompt_norm


class IntentGroups:
    """Groups of a set of normalised prompts; ``label(prompt_norm)`` names a prompt's group."""

    def __init__(self, prompt_norms: Iterable[str]) -> None:
        norms = list(prompt_norms)
        counts = Counter(intent_key(n) for n in norms)
        keys = sorted(counts)
        parent = {k: k for k in keys}

        def find(k: str) -> str:
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        def union(a: str, b: str) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        by_variant: dict[str, str] = {}
        for k in keys:
            if len(k) < MIN_TYPO_CHARS:
                continue
            for v in (k, *_deletions(k)):
                if v in by_variant:
                    union(k, by_variant[v])
                else:
                    by_variant[v] = k
        for k in keys:  # a mangled framing word left at an edge: "iit warm", "desert fel"
            words = k.split(" ")
            if len(words) < 2:
                continue
            for edge, rest in ((words[0], words[1:]), (words[-1], words[:-1])):
                if len(edge) <= 3 and edge.isalpha() and " ".join(rest) in counts:
                    union(k, " ".join(rest))
        members: dict[str, list[str]] = {}
        for k in keys:
            members.setdefault(find(k), []).append(k)
        self._label: dict[str, str] = {}
        for group in members.values():
            name = min(group, key=lambda k: (-counts[k], k))
            for k in group:
                self._label[k] = name
        self.count = len(members)

    def label(self, prompt_norm: str) -> str:
        key = intent_key(prompt_norm)
        return self._label.get(key, key)

    def split(self, prompt_norm: str, test_fraction: float, val_fraction: float) -> Split:
        return bucket_split(self.label(prompt_norm), test_fraction, val_fraction)


def look_subsets(test_looks: Sequence[str], test_groups: Sequence[str],
                 train_looks: Iterable[tuple[str, str]]) -> dict[str, list[int]]:
    """Indices of test rows in ``seen_looks`` (new wording) and ``unseen_looks``.

    ``test_looks``/``test_groups``: each test row's look key (what it asks for:
    ``trainer.look_keys.look_keys``) and group label; ``train_looks``: (look key, group label) of
    the training rows. A look is "seen" when some training row of a *different* group asks for
    the same. ``"{}"`` (a request the tools cannot serve, or nothing read) is not a look and counts
    as unseen.
    """
    trained: dict[str, set[str]] = {}
    for look, group in train_looks:
        trained.setdefault(look, set()).add(group)
    seen, unseen = [], []
    for i, (look, group) in enumerate(zip(test_looks, test_groups, strict=True)):
        if look != "{}" and trained.get(look, set()) - {group}:
            seen.append(i)
        else:
            unseen.append(i)
    return {"seen_looks": seen, "unseen_looks": unseen}

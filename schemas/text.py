"""Prompt normalisation: the one definition of "the same intent" used by caches, splits and dedup.

"  Golden Hour!! " and "golden hour" are the same intent; "golden hour, slightly" is not.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalise_prompt(text: str) -> str:
    """Lower-case, NFKC, collapse whitespace, strip punctuation at both ends."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text).strip()
    return _EDGE_PUNCT.sub("", text)

"""Nearest looks for a clause, blended by similarity: the offline teacher's core.

For each clause the prompt reader produced, cosine similarity (MiniLM, unit vectors) against every
library phrase gives each look its best phrase's score. Then:

* no look reaches ``MIN_SIMILARITY``, or an out-of-scope request ("remove the dog") scores higher
  than every look: the clause asks for nothing the tools can do and contributes nothing;
* otherwise the looks within ``BLEND_MARGIN`` of the best (at most ``BLEND_TOP_K``) are blended
  with softmax weights, scaled by the clause's modifier and by a confidence that ramps from 0.6 at
  ``MIN_SIMILARITY`` to 1 at ``FULL_SIMILARITY`` (a vague match gives a gentler edit);
* a clause of several concepts ("foggy London morning") is more than its nearest look: each content
  word that strongly names another look (``WORD_SIMILARITY``) and is not already a word of the
  chosen look's phrases adds that look as a further component; components are averaged, with a
  boost of ``COMPONENT_BOOST`` per extra component so that three looks together still show;
* the filter is the best look's, when that look carries most of the weight and the clause is not
  negated (there is no "opposite" of a filter).

Clauses add up ("warm and moody" = warm + moody), clamped to the contract's ranges; the first
clause with a filter chooses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from teacher.intent import Clause
from teacher.library import Library

# Calibrated on MiniLM-L6 cosine scores of paraphrases vs unrelated phrases (see
# tests/test_teacher_offline.py): paraphrases of a look score ~0.55-0.9; unrelated words and
# gibberish ("a cat", "asdfgh") reach ~0.5 because short texts sit close together in MiniLM space.
MIN_SIMILARITY = 0.5
FULL_SIMILARITY = 0.72
BLEND_MARGIN = 0.08
BLEND_TOP_K = 3
SOFTMAX_TEMPERATURE = 0.03
# An out-of-scope anchor must beat the best look by this much to veto the clause; ties go to the
# look because a wrongly empty edit is worse for a user than a gentle one.
OUT_OF_SCOPE_MARGIN = 0.02
WORD_SIMILARITY = 0.72
COMPONENT_BOOST = 0.25


@dataclass(frozen=True)
class Match:
    """How one clause was read: the looks used and their weights (for explanations and tests)."""

    clause: Clause
    looks: tuple[tuple[str, float], ...]  # (look name, weight), best first; empty = nothing to do
    similarity: float  # best look's similarity
    vector: np.ndarray  # scaled parameter vector (VECTOR_KEYS order)
    filter: tuple[str, int] | None
    out_of_scope: bool = False  # an out-of-scope anchor ("remove the dog") beat every look


class Matcher:
    """Matches clause embeddings against the library's phrase embeddings."""

    def __init__(self, library: Library, phrase_vectors: np.ndarray, scope_vectors: np.ndarray) -> None:
        self.library = library
        self._phrases = phrase_vectors
        self._owner = np.array([i for i, look in enumerate(library.looks) for _ in look.phrases])
        self._scope = scope_vectors
        self._look_vectors = np.array([look.vector for look in library.looks], dtype=np.float64)
        self._look_words = [
            {w for phrase in look.phrases for w in phrase.lower().replace("-", " ").split()} for look in library.looks
        ]

    def look_scores(self, embedding: np.ndarray) -> np.ndarray:
        """Per look, the best cosine similarity of any of its phrases."""
        # Rounded: an embedding's last bits depend on batch padding, and a label must not depend
        # on which other prompts shared its batch.
        sims = np.round(self._phrases @ embedding, 4)
        scores = np.full(len(self.library.looks), -1.0)
        np.maximum.at(scores, self._owner, sims)
        return scores

    def match(self, clause: Clause, embedding: np.ndarray, words: dict[str, np.ndarray] | None = None) -> Match:
        """Read one clause; ``words`` maps the clause's content words to their embeddings."""
        scores = self.look_scores(embedding)
        order = np.argsort(-scores)
        best = float(scores[order[0]])
        scope = float((self._scope @ embedding).max()) if len(self._scope) else -1.0
        empty = np.zeros(self._look_vectors.shape[1])
        if scope > best + OUT_OF_SCOPE_MARGIN and scope >= MIN_SIMILARITY:
            return Match(clause, (), best, empty, None, out_of_scope=True)
        if best < MIN_SIMILARITY or scope > best + OUT_OF_SCOPE_MARGIN:
            return Match(clause, (), best, empty, None)
        picked = [i for i in order[:BLEND_TOP_K] if scores[i] >= best - BLEND_MARGIN]
        logits = np.array([scores[i] for i in picked]) / SOFTMAX_TEMPERATURE
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        confidence = 0.6 + 0.4 * min(1.0, (best - MIN_SIMILARITY) / (FULL_SIMILARITY - MIN_SIMILARITY))
        factor = clause.scale * confidence
        components = [weights @ self._look_vectors[picked]]
        used = set(picked)
        covered = set().union(*(self._look_words[i] for i in picked))
        extra: list[tuple[str, float]] = []
        for word in clause.words:
            if word in covered or words is None or word not in words:
                continue
            word_scores = self.look_scores(words[word])
            look = int(np.argmax(word_scores))
            if word_scores[look] >= WORD_SIMILARITY and look not in used:
                used.add(look)
                components.append(self._look_vectors[look])
                extra.append((self.library.looks[look].name, 0.0))
        boost = 1.0 + COMPONENT_BOOST * (len(components) - 1)
        vector = factor * boost * np.mean(components, axis=0)
        share = 1.0 / len(components)
        top = self.library.looks[picked[0]]
        flt = None
        if top.filter is not None and weights[0] >= 0.5 and factor > 0:
            flt = (top.filter[0], int(round(min(100.0, top.filter[1] * factor * weights[0]))))
        looks = tuple((self.library.looks[i].name, float(w) * share) for i, w in zip(picked, weights, strict=True))
        looks += tuple((name, share) for name, _ in extra)
        return Match(clause, looks, best, vector, flt)


def combine(matches: list[Match], size: int) -> tuple[np.ndarray, tuple[str, int] | None]:
    """Sum the clauses' vectors; the first clause with a filter picks it."""
    total = np.zeros(size)
    flt = None
    for m in matches:
        total += m.vector
        if flt is None and m.filter is not None:
            flt = m.filter
    return total, flt

"""The offline teacher: a curated look library + the shipped MiniLM encoder. No network, ever.

It is a stand-in for a teacher LLM, and says so: every label's provenance is
``TeacherRef(model="offline", version="offline-<library hash>.<matcher version>.<table hash>[-t<temp>-s<seed>]")``.
What it knows is ``looks.yaml`` (169 looks, each mapped to an edit by hand) and the table of explicit
adjustment language (``adjustments.py``); what it does is read the explicit instructions out of the
prompt ("increase brightness, less saturation"), then read what is left as looks (``intent.py``),
find the nearest looks (``matcher.py``), blend them and add the instructions.

Guarantees: deterministic at temperature 0 (same prompt → same edit, on any machine with the same
library and weights); at temperature > 0 the variation is seeded by (seed, normalised prompt)
(``noise.py``); every edit passes ``schemas.validate_edit``; requests the tools cannot serve
("remove the dog") give ``{}``; for a partly global request ("brighten it and remove the dog") the
global part is done and the rest is listed in ``Label.unsupported``. Prompts are embedded in batches (well under 10 ms per prompt
warm on a 2-core CPU); the work runs in a worker thread so an event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from schemas.events import TeacherRef
from schemas.text import normalise_prompt
from teacher import adjustments
from teacher.base import Label
from teacher.encoder import Encoder
from teacher.intent import Clause, PromptReader
from teacher.library import LIBRARY_PATH, VECTOR_KEYS, Library, load_library, vector_to_edit
from teacher.matcher import Match, Matcher, combine
from teacher.noise import perturb, rng_for

# Bump when matching or noise changes what a prompt gets, so caches and provenance notice.
MATCHER_VERSION = "m2"
# Looks read from what is left of an explicit instruction ("correct the over exposure from the
# sun") must be clear matches: a stray word should not drag a whole look in.
LEFTOVER_SIMILARITY = 0.8
# Blends leave crumbs (shadows -1); no colourist sets a slider to 2, so those are dropped.
MIN_VISIBLE = 3.0
WORD_CACHE_SIZE = 50_000  # ~150 MB of float64 vectors at most; cleared wholesale when exceeded


# Library phrase embeddings by cache key: a second teacher in the same process starts instantly.
_PHRASE_MEMO: dict[str, np.ndarray] = {}


@lru_cache(maxsize=2)
def _shared_encoder(path: str | None) -> Encoder:
    # One MiniLM per process however many teachers are built (the trainer builds several).
    return Encoder(path)


@dataclass(frozen=True)
class Reading:
    """One prompt as the offline teacher read it."""

    adjustments: tuple[adjustments.Adjustment, ...]  # explicit instructions (``adjustments.py``)
    matches: list[Match]  # look clauses and the looks they matched
    unsupported: tuple[str, ...]  # parts the colour tools cannot do ("remove the dog")


def _protected_phrases(library: Library) -> tuple[str, ...]:
    """Multi-word look names that use adjustment words but are looks ("blue hour", "dark and moody").

    A phrase made only of words the table explains ("brighten the photo") is an instruction, not a look.

    Phrases with a direction cue ("more contrast"), "too" or a complaint ("washed out") are left to
    the adjustment table, which reads them the same way everywhere.
    """
    instruction = set(adjustments.CUES) | set(adjustments.TOO) | {
        w for a in adjustments.ATTRIBUTES for w in (*a.lacking, *a.excess)}
    out = set()
    for look in library.looks:
        for phrase in look.phrases:
            text = normalise_prompt(phrase)
            words = text.split()
            if len(words) < 2 or not set(words) & adjustments.LEXICON_WORDS:
                continue
            if set(words) <= adjustments.EXPLAINED_WORDS:
                read = adjustments.read(text).adjustments
                if not {a.attribute for a in read if a.sign > 0} & {a.attribute for a in read if a.sign < 0}:
                    continue  # "brighten the photo", "greener grass": an instruction, read by the table
                # "cool shadows warm highlights" contradicts itself as instructions: it is a look.
            if any(re.search(rf"\b{re.escape(w)}\b", text) for w in instruction):
                continue
            out.add(text)
    return tuple(sorted(out, key=len, reverse=True))


class OfflineTeacher:
    """``OfflineTeacher(temperature=0.0, seed=0)``; see the module docstring for guarantees."""

    name = "offline"

    def __init__(self, temperature: float = 0.0, seed: int = 0, *, library_path: Path = LIBRARY_PATH,
                 encoder_path: str | None = None, cache_dir: Path | None = None, encoder: Encoder | None = None) -> None:
        if not 0.0 <= temperature <= 2.0:
            msg = f"offline teacher temperature must be in 0..2, got {temperature}"
            raise ValueError(msg)
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.library = load_library(library_path)
        self._encoder_path = encoder_path
        self._encoder = encoder  # None: the process's shared one for encoder_path
        self._cache_dir = cache_dir
        self._matcher: Matcher | None = None
        self._reader: PromptReader | None = None
        self._warm_lock = threading.Lock()
        self._word_vectors: dict[str, np.ndarray] = {}
        suffix = f"-t{self.temperature:g}-s{self.seed}" if self.temperature > 0 else ""
        self.version = f"offline-{self.library.digest}.{MATCHER_VERSION}.{adjustments.table_digest()}{suffix}"
        self._protected = _protected_phrases(self.library)
        self.ref = TeacherRef(model="offline", version=self.version)

    # -- setup ---------------------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        return self._encoder or _shared_encoder(self._encoder_path)

    def _phrase_vectors(self, texts: list[str]) -> np.ndarray:
        """Library phrase embeddings, cached on disk per (library, weights): a warm start is instant."""
        cache_dir = self._cache_dir
        if cache_dir is None:
            from foundation.settings import get_settings

            cache_dir = get_settings().data_path / "cache"
        weights = Path(self.encoder._path) / "model.safetensors"
        stamp = f"{self.library.digest}:{weights.stat().st_size if weights.exists() else 0}:{len(texts)}"
        key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
        path = cache_dir / f"offline-phrases-{key}.npy"
        if key not in _PHRASE_MEMO:
            _PHRASE_MEMO[key] = self._load_or_encode(path, texts)
        if not path.exists():
            self._save(path, _PHRASE_MEMO[key])
        return _PHRASE_MEMO[key]

    def _load_or_encode(self, path: Path, texts: list[str]) -> np.ndarray:
        if path.exists():
            vectors = np.load(path)
            if vectors.shape[0] == len(texts):
                return vectors
        return self.encoder.encode(texts)

    @staticmethod
    def _save(path: Path, vectors: np.ndarray) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, vectors)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
        except OSError:
            pass  # a read-only data dir only costs the next start a few seconds

    def warm(self) -> None:
        """Load the encoder and embed the library now rather than on the first prompt.

        Thread-safe: the labeler runs several ``label`` calls at once in worker threads, and a thread
        must never see the matcher without the reader (the matcher is published last).
        """
        if self._matcher is not None:
            return
        with self._warm_lock:
            if self._matcher is not None:
                return
            phrases = [p for look in self.library.looks for p in look.phrases]
            vectors = self._phrase_vectors(phrases + list(self.library.out_of_scope))
            self._reader = PromptReader(phrases + list(self.library.out_of_scope), self.encoder.vocabulary(),
                                        extra_words=adjustments.LEXICON_WORDS)
            self._matcher = Matcher(self.library, vectors[:len(phrases)], vectors[len(phrases):])

    # -- labelling -----------------------------------------------------------------------------
    def grammar(self, prompt: str) -> adjustments.Reading:
        """What the adjustment table reads in ``prompt`` (typos fixed, look names kept whole): the
        explicit part of its label, ``adjustments.to_vector`` of it; the look part comes from ``rest``."""
        self.warm()
        assert self._reader is not None
        return adjustments.read(self._reader.fix_typos(normalise_prompt(prompt)), self._protected)

    def read(self, prompts: Sequence[str]) -> list[Reading]:
        """How each prompt was read: explicit adjustments, then looks for the rest (batch-embedded)."""
        self.warm()
        assert self._reader is not None and self._matcher is not None
        grammar = [self.grammar(p) for p in prompts]
        # Each leftover segment is read as look clauses; a whole prompt with no instruction is read
        # exactly as before (the look library's own modifiers and compounds).
        looks: list[list[tuple[Clause, bool]]] = []
        for prompt, g in zip(prompts, grammar, strict=True):
            if not g.adjustments:
                looks.append([(c, False) for c in self._reader.read(prompt)])
                continue
            parts = [part.replace("_", " ") for part in g.rest]
            looks.append([(c, True) for part in parts for c in self._reader.read(part)])
        flat = [c.text for cs in looks for c, _ in cs]
        # Content words are few and repeat across prompts: each is embedded once per process.
        new_words = sorted({w for cs in looks for c, _ in cs for w in c.words} - self._word_vectors.keys())
        texts = flat + new_words
        embeddings = self.encoder.encode(texts).astype(np.float64) if texts else np.zeros((0, 384))
        if len(self._word_vectors) > WORD_CACHE_SIZE:
            self._word_vectors.clear()
        self._word_vectors.update(zip(new_words, embeddings[len(flat):], strict=True))
        out: list[Reading] = []
        i = 0
        for g, cs in zip(grammar, looks, strict=True):
            matches: list[Match] = []
            unsupported: list[str] = []
            for j, (clause, leftover) in enumerate(cs):
                m = self._matcher.match(clause, embeddings[i + j], self._word_vectors)
                if m.out_of_scope:
                    unsupported.append(clause.raw)
                elif leftover and m.similarity < LEFTOVER_SIMILARITY:
                    m = Match(clause, (), m.similarity, np.zeros_like(m.vector), None)
                matches.append(m)
            i += len(cs)
            out.append(Reading(g.adjustments, matches, tuple(unsupported)))
        return out

    def explain(self, prompts: Sequence[str]) -> list[list[Match]]:
        """The looks each prompt's clauses matched (``read`` has the explicit adjustments too)."""
        return [r.matches for r in self.read(prompts)]

    def label_sync(self, prompts: Sequence[str]) -> list[Label]:
        """``label`` without an event loop (for the trainer's bulk labelling)."""
        self.warm()  # a one-off start-up cost, not part of any prompt's latency
        start = time.perf_counter()
        readings = self.read(prompts)
        labels = []
        for prompt, reading in zip(prompts, readings, strict=True):
            vector, flt = combine(reading.matches, len(VECTOR_KEYS))
            vector = vector + adjustments.to_vector(reading.adjustments, VECTOR_KEYS)
            if self.temperature > 0:
                vector, flt = perturb(vector, flt, self.temperature, rng_for(self.seed, normalise_prompt(prompt)))
            vector = np.where(np.abs(vector) < MIN_VISIBLE, 0.0, vector)
            labels.append(Label(prompt=prompt, edit=vector_to_edit(vector, flt), teacher=self.ref,
                                unsupported=reading.unsupported))
        # One batched forward pass serves every prompt, so each gets an equal share of the time.
        share = (time.perf_counter() - start) * 1000.0 / max(1, len(prompts))
        return [Label(**{**lab.__dict__, "latency_ms": share}) for lab in labels]

    async def label(self, prompts: Sequence[str]) -> list[Label]:
        return await asyncio.to_thread(self.label_sync, list(prompts))

    async def aclose(self) -> None:
        self._matcher = None
        self._reader = None

"""Simulated look requests labelled by the offline teacher, for benchmarks and fixtures.

Until the streams simulator feeds the warehouse, the acceptance run and the RQ2 benchmark need
(prompt, edit) pairs that look like app traffic: a look phrase from the teacher's library, often
with a modifier ("slightly", "a lot more"), a framing ("make it ..."), a second look, or a typo.
The teacher labels them, so the student learns the teacher, as in the paper.

Deterministic: the same (n, seed) gives the same prompts, and the offline teacher is deterministic
at a fixed (temperature, seed). ``exporters`` (distinct users who exported the edit) is drawn from
a geometric-like distribution so r_3 / r_5 subsets exist.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.text import normalise_prompt
from streams.vocabulary import typo
from trainer.augment import FRAMES
from trainer.data import write_jsonl

_MODIFIERS = ("slightly", "a bit", "very", "a lot more", "a touch of", "super", "subtle", "really",
              "a little", "extremely", "kind of", "not too")
_JOINERS = (" and ", ", ", " with ", " plus ")


def _phrases() -> list[str]:
    from teacher.library import load_library

    return sorted({p for look in load_library().looks for p in look.phrases})


def generate_prompts(n: int, seed: int = 0, phrases: Sequence[str] | None = None) -> list[str]:
    """``n`` distinct (after normalisation) look requests."""
    rng = random.Random(seed)
    phrases = list(phrases or _phrases())
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n and attempts < n * 50:
        attempts += 1
        p = rng.choice(phrases)
        roll = rng.random()
        if roll < 0.30:
            text = rng.choice(FRAMES).format(p=p)
        elif roll < 0.60:
            text = rng.choice(FRAMES).format(p=f"{rng.choice(_MODIFIERS)} {p}")
        elif roll < 0.85:
            q = rng.choice(phrases)
            left = f"{rng.choice(_MODIFIERS)} {p}" if rng.random() < 0.3 else p
            text = f"{left}{rng.choice(_JOINERS)}{q}"
        else:
            text = typo(rng.choice(FRAMES).format(p=p), rng)
        norm = normalise_prompt(text)
        if norm and norm not in seen:
            seen.add(norm)
            out.append(text)
    return out


def label(prompts: Sequence[str], *, temperature: float = 0.0, seed: int = 0, batch: int = 256) -> list[dict[str, Any]]:
    """Label prompts with the offline teacher; rows the teacher could not label are left out."""
    from teacher.offline import OfflineTeacher

    teacher = OfflineTeacher(temperature=temperature, seed=seed)
    rows: list[dict[str, Any]] = []
    rng = random.Random(seed + 1)

    async def run() -> None:
        for i in range(0, len(prompts), batch):
            for lab in await teacher.label(list(prompts[i:i + batch])):
                if lab.ok and lab.edit is not None:
                    exporters = min(12, int(rng.expovariate(0.35)) + 1)
                    rows.append({"id": f"sim-{len(rows):06d}", "prompt": lab.prompt,
                                 "edit": lab.edit.canonical_dict(), "exporters": exporters})

    asyncio.run(run())
    return rows


def simulate(path: str | Path, n: int, *, seed: int = 0, temperature: float = 0.0) -> Path:
    """Write ``n`` prompts labelled by the offline teacher as JSONL (id, prompt, edit, exporters)."""
    rows = label(generate_prompts(n, seed), temperature=temperature, seed=seed)
    write_jsonl(path, rows)
    return Path(path)

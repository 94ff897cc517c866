"""Malformed records of every kind a real producer fleet sends, for fault tests and the simulator."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

from schemas.events import TOPIC_EXPORTS, TOPIC_PROMPTS

_GOOD = {"schema_version": 1, "event_id": "", "project_id": "p", "user_id": "u", "ts": "2026-11-25T10:00:00Z",
         "prompt": "golden hour"}


def _variant(kind: int, k: int) -> tuple[str, bytes]:
    """(topic, value) of malformed record number k of the given kind."""
    good = {**_GOOD, "event_id": f"bad-{k}", "project_id": f"bad-project-{k}"}
    if kind == 0:
        return TOPIC_PROMPTS, b"{not json at all"
    if kind == 1:
        return TOPIC_PROMPTS, b"\xff\xfe\x00 not utf-8 \xc3\x28"
    if kind == 2:
        return TOPIC_PROMPTS, json.dumps({k2: v for k2, v in good.items() if k2 != "event_id"}).encode()
    if kind == 3:
        return TOPIC_PROMPTS, json.dumps({**good, "ts": 12345, "user_id": ["x"]}).encode()
    if kind == 4:
        return TOPIC_PROMPTS, json.dumps({**good, "schema_version": 99}).encode()
    if kind == 5:
        return TOPIC_PROMPTS, json.dumps({**good, "prompt": "golden " * 200}).encode()
    if kind == 6:
        return TOPIC_PROMPTS, json.dumps({**good, "served_edit": {"adjust": {"contrast": 400}}}).encode()
    if kind == 7:
        return TOPIC_PROMPTS, json.dumps({**good, "prompt": "x" * 100_000}).encode()  # oversize payload
    if kind == 8:
        return TOPIC_EXPORTS, json.dumps({k2: good[k2] for k2 in ("schema_version", "project_id", "user_id")}).encode()
    return TOPIC_EXPORTS, json.dumps({**good, "final_edit": {"filter": {"name": "nope", "intensity": 5}}}).encode()


KINDS = 10


def malformed_records(n: int, rng: random.Random) -> Iterator[tuple[str, str | None, bytes]]:
    """n malformed records cycling through every kind; some have no key at all."""
    for k in range(n):
        topic, value = _variant(k % KINDS, k)
        key = None if rng.random() < 0.2 else f"bad-project-{k}"
        yield topic, key, value

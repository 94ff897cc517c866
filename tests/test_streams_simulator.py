"""Simulated users: the request mix, explicit requests with an exactly known intent, real requests."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from foundation.errors import ToneflowError
from foundation.settings import Settings
from schemas import Edit
from streams.simulator import LOOKS_ONLY, Mix, Users, generate_prompts, similarity, simulate_dataset
from streams.vocabulary import BUILTIN_REAL_REQUESTS, explicit_request, real_requests
from teacher.adjustments import ATTRIBUTES, read

# Written for this test (the shared pool is never copied into the repository).
POOL = ("make it brighter please", "the colours look dull, boost them", "darken the sky a bit", "more warmth")


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings(data_dir=tmp_path / "data", real_requests_dir=tmp_path / "real", **kw)


def test_mix_parses_and_says_what_is_wrong() -> None:
    assert Mix.parse("looks=0.5,explicit=0.5") == Mix(0.5, 0.5, 0.0)
    assert Mix.parse(Settings().sim_mix) == Mix.default()  # the default traffic uses all three kinds
    assert all(w > 0 for w in Mix.default().weights())
    for bad in ("looks=x", "colours=0.3", "looks=-1", "looks=0,real=0"):
        with pytest.raises(ToneflowError, match="share"):
            Mix.parse(bad)


def test_real_requests_come_from_the_pool_file_or_the_builtin_list(tmp_path: Path) -> None:
    assert real_requests(tmp_path / "missing") == BUILTIN_REAL_REQUESTS
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "pool.txt").write_text("\n".join(POOL) + "\n\n", encoding="utf-8")
    assert real_requests(tmp_path / "real") == POOL


def test_explicit_requests_know_their_intent_and_the_teacher_reads_them() -> None:
    rng = random.Random(5)
    sizes: Counter[int] = Counter()
    for _ in range(300):
        request = explicit_request(rng)
        sizes[len(request.adjustments)] += 1
        assert len({a.attribute for a in request.adjustments}) == len(request.adjustments)
        got = sorted((a.attribute, a.sign) for a in read(request.text.lower()).adjustments)
        assert got == sorted((a.attribute, a.sign) for a in request.adjustments), request.text
    assert set(sizes) == {1, 2, 3}


def test_users_draw_the_mix_with_hidden_intents(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "pool.txt").write_text("\n".join(POOL), encoding="utf-8")
    users = Users(3, Mix(0.4, 0.35, 0.25), settings=settings)
    drawn = users.draw(200)
    kinds = Counter(users.kinds[key] for key, _ in drawn)
    assert set(kinds) == {"looks", "explicit", "real"} and min(kinds.values()) >= 25
    for key, text in drawn:
        hidden = users.hidden(key)
        if users.kinds[key] == "real":
            assert text in POOL
        if users.kinds[key] == "explicit":
            # The hidden intent is exactly the table's edit for the clauses: check each clause's sign.
            for adj in users.meaning[key]:
                attribute = next(a for a in ATTRIBUTES if a.name == adj.attribute)
                param, value = max(attribute.up.items(), key=lambda kv: abs(kv[1]))
                got = _param(hidden, param)
                assert got * value * adj.sign > 0, (text, key, param, got)
    assert Counter(Users(3, LOOKS_ONLY, settings=settings).kinds.values()) == Counter()
    only_looks = Users(4, LOOKS_ONLY, settings=settings)
    only_looks.draw(30)
    assert set(only_looks.kinds.values()) == {"looks"}


def _param(edit: Edit, key: str) -> int:
    canon = edit.canonical_dict()
    if "." in key:
        colour, channel = key.split(".")
        return canon.get("selective_adjust", {}).get(colour, {}).get(channel, 0)
    return canon.get("adjust", {}).get(key, 0)


def test_exports_follow_closeness_to_the_hidden_intent(tmp_path: Path) -> None:
    users = Users(9, Mix(0.0, 1.0, 0.0), settings=_settings(tmp_path))
    drawn = users.draw(150)
    right = wrong = 0
    for key, _ in drawn:
        hidden = users.hidden(key)
        opposite = Edit.model_validate(_negate(hidden.canonical_dict()))
        assert similarity(hidden, hidden) == pytest.approx(1.0)
        right += users.react(key, hidden)[0]
        wrong += users.react(key, opposite)[0]
    assert right > 3 * wrong and right > 0.5 * len(drawn)


def _negate(edit: dict) -> dict:
    out = {}
    if "adjust" in edit:
        out["adjust"] = {k: -v for k, v in edit["adjust"].items()}
    if "selective_adjust" in edit:
        out["selective_adjust"] = {c: {k: -v for k, v in ch.items()} for c, ch in edit["selective_adjust"].items()}
    return out


def test_datasets_are_one_simulator_looks_by_default(tmp_path: Path) -> None:
    looks = generate_prompts(120, 2)
    assert looks == generate_prompts(120, 2) and len(set(looks)) == 120
    mixed = generate_prompts(120, 2, mix=Mix(0.3, 0.5, 0.2), pool=POOL)
    assert any(read(p.lower()).adjustments for p in mixed) and any(p in POOL for p in mixed)
    path = simulate_dataset(tmp_path / "sim.jsonl", 20, seed=1)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert 0 < len(rows) <= 20 and {"id", "prompt", "edit", "exporters"} <= set(rows[0])


def test_traffic_plan_takes_its_mix_from_settings(tmp_path: Path) -> None:
    from schemas.events import TOPIC_PROMPTS
    from streams.simulator import plan_traffic

    plan = plan_traffic(_settings(tmp_path, sim_mix="explicit=1"), 40, seed=2)
    prompts = [json.loads(value)["prompt"] for topic, _, value, _ in plan.wire if topic == TOPIC_PROMPTS]
    assert len(prompts) >= 40
    # Every prompt is an explicit request (typos aside, the table reads at least one instruction).
    assert sum(bool(read(p.lower()).adjustments) for p in prompts) >= 0.9 * len(prompts)


def test_more_or_less_with_a_state_word_is_read_the_asked_way() -> None:
    from streams.vocabulary import PHRASINGS, explicit_clause

    rng = random.Random(11)
    made = []
    for _ in range(3000):
        attribute = rng.choice(sorted(PHRASINGS))
        sign = rng.choice((1, -1))
        text, meant = explicit_clause(attribute, sign, rng)
        ph = PHRASINGS[attribute]
        if any(text.endswith(f"{w} {s}") for w in ("more", "less") for s in (ph.high, ph.low) if s):
            made.append(text)
            assert [(a.attribute, a.sign) for a in read(text).adjustments] == [(attribute, sign)], text
    # both words in front of both states: "less bright" (down) and "less dark" (up) alike
    assert any(t.endswith("less bright") for t in made) and any(t.endswith("less dark") for t in made)
    assert any(t.endswith("more dark") for t in made)

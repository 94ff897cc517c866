"""Honest evaluation: intent-disjoint splits, rendered-look agreement, real requests, the 3-way gate."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from editor.lookcompare import LookRenders
from editor.photoset import PHOTO_SET, photo_stack
from editor.render import RenderOptions
from editor.stats import chroma, contrast, green, luma, warmth
from foundation.settings import Settings
from schemas.edit import Edit
from schemas.text import normalise_prompt
from schemas.validation import validate_edit
from trainer import registry, snapshot
from trainer.data import make_example
from trainer.evaluate import evaluate_student
from trainer.exceptions import DataError, GateRejected
from trainer.grouping import IntentGroups, intent_key, look_subsets
from trainer.rendered import rendered_agreement
from trainer.requests import BUILTIN, Request, read_requests, run_requests, shared_dev_file

GOLDEN = {"adjust": {"temperature": 30, "highlights": 20}, "filter": {"name": "warm_GoldenHour", "intensity": 60}}
NOIR = {"adjust": {"contrast": 40, "saturation": -100}}


@pytest.fixture(scope="module")
def renders() -> LookRenders:
    return LookRenders(options=RenderOptions(threads=1))


def _old_split(prompt: str) -> str:
    """The rule this replaces: a hash of the normalised prompt alone."""
    bucket = int.from_bytes(hashlib.sha256(normalise_prompt(prompt).encode()).digest()[:8], "big") % 10_000
    return "test" if bucket < 1000 else "validation" if bucket < 2000 else "train"


# --- intent-disjoint splits ------------------------------------------------------------------------
FORMS = ("golden hour", "Golden Hour!", "make it golden hour", "golden hour look", "a bit more golden hour",
         "golden hour please", "give me golden hour", "slightly golden hour", "goldne hour", "golden hour vibes",
         "can you make this golden hour", "i want golden hour", "something golden hour", "golden hour style")


def test_surface_forms_the_old_rule_split_apart_now_share_a_split(settings: Settings) -> None:
    old = {p: _old_split(p) for p in FORMS}
    assert len(set(old.values())) > 1, "the data set must contain forms the old rule put in different splits"
    others = [make_example(f"{name} mood", NOIR if i % 2 else {"adjust": {"exposure": 5 + i}})
              for i, name in enumerate(("rainy", "sunny", "foggy", "misty", "stormy", "snowy", "windy", "cloudy"))]
    rows = [make_example(p, GOLDEN) for p in FORMS] + others
    snap = snapshot.create(settings, rows, policy="export_rate", source={"kind": "test"})
    where = {r.prompt: split for split in snapshot.SPLITS for r in snap.rows(split)}
    assert len({where[p] for p in FORMS}) == 1  # one intent, every wording, one split
    assert snap.manifest["grouping"]["groups"] == 1 + len(others)


def test_groups_join_typos_and_framing_but_keep_intents_apart() -> None:
    groups = IntentGroups(["golden hour"] * 5 + ["goldne hour", "makke it golden hour", "iit golden hour",
                                                  "warm", "warmer", "lake", "misty lake", "like misty lake"])
    assert {groups.label(n) for n in ("goldne hour", "makke it golden hour", "iit golden hour")} == {"golden hour"}
    assert groups.label("warm") != groups.label("warmer")  # short keys never join on one edit
    assert groups.label("misty lake") == groups.label("like misty lake") != groups.label("lake")
    assert intent_key("slightly golden hour please") == "golden hour"
    assert groups.label("golden hour") == "golden hour"  # named by its most frequent key, not a typo


def test_look_words_that_resemble_framing_typos_stay_content() -> None:
    # g1 read "light" as a slip of "slight": "golden light" lost a word and joined the golden group
    assert intent_key("golden light") == "golden light" and intent_key("slightly golden hour") == "golden hour"
    groups = IntentGroups(["golden", "golden light", "golden hour", "cold", "cold tone", "quiet morning", "epic"])
    assert groups.label("golden light") != groups.label("golden")
    assert intent_key("cold tone") == "cold tone" and intent_key("quiet morning") == "quiet morning"
    assert intent_key("could you make it warm") == "warm" and intent_key("quite warm") == "warm"  # still framing


def test_no_look_word_is_framing() -> None:
    """Every word of the look library and of the traffic's intents is content, unless it is itself a
    framing word: a new look word that reads as a framing slip fails here (add it to CONTENT_WORDS)."""
    from streams.vocabulary import INTENTS
    from teacher.library import load_library
    from trainer.grouping import FRAME_WORDS, _is_frame

    words = {w for look in load_library().looks for p in look.phrases for w in re.findall(r"[\w']+", p.lower())}
    words |= {w for p in INTENTS for w in re.findall(r"[\w']+", p.lower())}
    assert words - FRAME_WORDS and not {w for w in words - FRAME_WORDS - {"lots"} if _is_frame(w)}


def test_look_subsets_seen_and_unseen() -> None:
    subsets = look_subsets(["look:golden hour", "look:film noir", "{}"], ["sunset", "film noir", "nothing"],
                           [("look:golden hour", "golden hour"), ("look:film noir", "film noir")])
    # sunset asks for a look another intent trains: a seen look in new wording; film noir's look is
    # only in its own group (impossible in a real split, shown for the rule); {} is not a look
    assert subsets == {"seen_looks": [0], "unseen_looks": [1, 2]}


def test_look_keys_read_the_request_not_its_label() -> None:
    from trainer.look_keys import look_keys

    keys = look_keys(["golden hour", "magic hour", "slightly golden hour", "make it a bit brighter",
                      "increase the brightness a lot", "darker please", "warmer and less saturated", "remove the dog"])
    # one look under three wordings and two strengths; an instruction by attribute and direction,
    # whatever its amount; nothing the tools can do is no look
    assert keys[0] == keys[1] == keys[2] == "look:golden hour"
    assert keys[3] == keys[4] == "+brightness" != keys[5]
    assert keys[6] == "+warmth & -saturation" and keys[7] == "{}"


def test_seen_wording_survives_noisy_labels() -> None:
    """The demo's labels carry sampling noise: two rows of one look rarely share an exact label.
    Seen wording is decided by what the request asks for, so the noise cannot move a row out of it."""
    train = [make_example("magic hour", GOLDEN), make_example("film noir", NOIR)]
    noisy = {**GOLDEN, "adjust": {"temperature": 27, "highlights": 22}}
    test = [make_example("golden hour", noisy), make_example("blade runner neon", {"adjust": {"tint": 30}})]
    result = evaluate_student(FixedStudent(GOLDEN), test, train_rows=train, render=False)
    assert result.looks == {"seen_looks": [0], "unseen_looks": [1]}


def test_group_balanced_counts_every_intent_once() -> None:
    from trainer.evaluate import group_balanced
    from trainer.metrics import score

    good, bad = validate_edit(GOLDEN), validate_edit(NOIR)
    wrong = score([good], [bad]).overall
    perfect = score([good], [good]).overall  # GOLDEN uses two of the three tools: 2/3 at best
    assert wrong < perfect
    preds, refs = [good] * 4, [good, good, good, bad]
    # three rows of one intent right, one row of another wrong: each intent weighs as one row
    balanced = score([good, good], [good, bad]).overall
    assert group_balanced(preds, refs, ["a", "a", "a", "b"]) == pytest.approx(balanced)
    assert balanced < score(preds, refs).overall and score([good] * 4, [good] * 4, [0.25] * 4).overall == pytest.approx(perfect)
    result = evaluate_student(FixedStudent(GOLDEN), [make_example(p, e) for p, e in (
        ("golden hour", GOLDEN), ("golden hour please", GOLDEN), ("make it golden hour", GOLDEN),
        ("film noir", NOIR))], train_rows=[make_example("arctic", NOIR)], render=False)
    assert result.group_balanced == pytest.approx(balanced) and balanced < result.overall
    assert result.record()["group_balanced_overall"] == pytest.approx(result.group_balanced)


def test_ceilings_say_what_a_perfect_model_scores_on_each_subset() -> None:
    from trainer.metrics import score

    sel = {"adjust": {"contrast": 10}, "selective_adjust": {"blue": {"saturation": 30}}}
    test = [make_example("golden hour", GOLDEN), make_example("film noir", NOIR), make_example("blue sky pop", sel)]
    # "sunset glow" trains the golden-hour look under other words; noir and the blue clause are new looks
    result = evaluate_student(FixedStudent(GOLDEN), test, train_rows=[make_example("sunset glow", GOLDEN)],
                              render=False)
    assert result.looks == {"seen_looks": [0], "unseen_looks": [1, 2]}
    ceilings = result.ceilings()
    # All: every tool used by some reference; seen: adjust + filter; unseen: adjust + selective, no filter
    assert ceilings == pytest.approx({"All": 1.0, "seen_looks": 2 / 3, "unseen_looks": 2 / 3})
    perfect = [validate_edit(NOIR), validate_edit(sel)]
    assert score(perfect, perfect).overall == pytest.approx(ceilings["unseen_looks"])  # the same code scores both
    assert result.subsets["unseen_looks"].overall < ceilings["unseen_looks"]  # GOLDEN is wrong for both
    assert result.record()["ceilings"] == ceilings
    assert result.public()["unseen_looks"]["ceiling"] == pytest.approx(2 / 3)


def test_pinned_groups_stay_out_of_training(settings: Settings) -> None:
    rows = [make_example(f"look number {i}", {"adjust": {"contrast": 1 + i}}) for i in range(60)]
    snap = snapshot.create(settings, rows, policy="export_rate", source={"kind": "test"})
    snapshot.pin(settings, snap.id)
    pinned = [r.prompt for r in snap.rows("test")]
    assert pinned
    rewordings = [make_example(f"make it {p} please", {"adjust": {"contrast": 3}}) for p in pinned]
    new = snapshot.create(settings, rows + rewordings, policy="export_rate", source={"kind": "test"})
    trained = {r.prompt for s in ("train", "validation") for r in new.rows(s)}
    assert not trained & {r.prompt for r in rewordings}  # a new wording of a pinned intent is not trained on


# --- image statistics and ΔE ---------------------------------------------------------------------
def test_statistics_on_known_images() -> None:
    grey = np.full((1, 4, 4, 3), 51, dtype=np.uint8)
    red = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    red[..., 0] = 255
    half = np.concatenate([np.zeros((1, 2, 4, 3), np.uint8), np.full((1, 2, 4, 3), 255, np.uint8)], axis=1)
    assert luma(grey)[0] == pytest.approx(0.2) and chroma(grey)[0] == 0 and warmth(grey)[0] == 0
    assert luma(red)[0] == pytest.approx(0.2126) and chroma(red)[0] == 1 and warmth(red)[0] == 1
    assert green(red)[0] == pytest.approx(-0.5) and contrast(half)[0] == pytest.approx(0.5)


def test_photo_set_is_eight_real_photographs() -> None:
    stack = photo_stack()
    assert len(PHOTO_SET) >= 8 and stack.shape == (len(PHOTO_SET), 48, 64, 3) and stack.dtype == np.uint8
    assert len({luma(p[None])[0].round(3) for p in stack}) == len(PHOTO_SET)  # eight different pictures


def test_delta_e_agrees_with_scikit_image(renders: LookRenders) -> None:
    from skimage.color import deltaE_ciede2000, rgb2lab

    a, b = renders.render(GOLDEN), renders.render(NOIR)
    independent = float(np.mean(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))))
    assert renders.delta_e(GOLDEN, NOIR) == pytest.approx(independent, abs=1e-6)
    result = rendered_agreement([validate_edit(GOLDEN)], [validate_edit(NOIR)], renders)
    assert result.delta_e[0] == pytest.approx(independent, abs=1e-6)
    assert independent > 5  # a warm golden look and a monochrome one do not look alike


def test_direction_agreement(renders: LookRenders) -> None:
    brighter, darker = validate_edit({"adjust": {"exposure": 40}}), validate_edit({"adjust": {"exposure": -40}})
    same = rendered_agreement([brighter], [brighter], renders).summary()
    assert same["delta_e"] == 0 and same["direction_agreement"] == 1 and same["per_statistic"]["luma"]["n"] == 1
    wrong = rendered_agreement([darker, Edit()], [brighter, brighter], renders)
    summary = wrong.summary()
    assert summary["per_statistic"]["luma"] == {"n": 2, "agreement": 0.0}
    assert wrong.per_example(["a", "b"])[0]["disagrees_on"][0] == "luma"
    warm = rendered_agreement([validate_edit({"adjust": {"temperature": 60}})],
                              [validate_edit({"adjust": {"temperature": 30}})], renders).summary()
    assert warm["per_statistic"]["warmth"] == {"n": 1, "agreement": 1.0}


# --- real requests -------------------------------------------------------------------------------
def _keyword_student(prompts: list[str]) -> list[Edit]:
    """A deliberately crude model: brightens everything, except requests to darken."""
    return [validate_edit({"adjust": {"exposure": -40 if "dark" in p else 40}}) for p in prompts]


def test_builtin_requests_with_a_known_model(renders: LookRenders) -> None:
    result = run_requests(_keyword_student, BUILTIN, renders)
    luma_rows = [r for r in BUILTIN if r.statistic == "luma"]
    assert result.per_statistic["luma"] == {"n": len(luma_rows), "met": len(luma_rows), "accuracy": 1.0}
    failed = {f["prompt"] for f in result.failures}
    assert "cooler tones" in failed and "make it darker" not in failed
    assert result.met == result.n - len(result.failures) and result.n == len(BUILTIN)


def test_request_file_format(tmp_path: Path) -> None:
    good = tmp_path / "r.tsv"
    good.write_text("# prompt\tmetric\tdirection\tthreshold\nmake it pop\tchroma\tup\t0.05\n")
    assert read_requests(good) == [Request("make it pop", "chroma", "up", 0.05)]
    bad = tmp_path / "bad.tsv"
    bad.write_text("make it pop\tsparkle\tup\t0.05\n")
    with pytest.raises(DataError, match=r"bad.tsv:1: expected prompt"):
        read_requests(bad)


def test_shared_dev_set_parses_when_present() -> None:
    path = shared_dev_file(Settings())
    if path is None:
        pytest.skip("the shared real-request set (../shared/benchmarks/real-requests) is not on this machine")
    requests = read_requests(path)
    assert len(requests) == 300 and {r.statistic for r in requests} <= {"luma", "chroma", "warmth", "contrast"}


# --- the gate ------------------------------------------------------------------------------------
class FixedStudent:
    """Answers every prompt with one edit (the gate reads recorded evals, not the model)."""

    def __init__(self, edit: dict) -> None:
        self.edit = validate_edit(edit)

    def predict(self, prompts: list[str]) -> list[Edit]:
        return [self.edit] * len(prompts)


def _register(settings: Settings, tag: str) -> str:
    staged = registry.stage(settings)
    (staged / "weights.bin").write_text(tag)
    return registry.commit(settings, staged, {"student": "minilm", "snapshot": None, "parent": None})


def test_better_parameters_but_worse_renders_is_not_promoted(settings: Settings) -> None:
    rows = [make_example(p, {"adjust": {"exposure": 40}}) for p in ("brighter", "lighter please", "more light")]
    # The champion uses the wrong slider (cosine 0) that looks almost the same; the candidate uses
    # the right one plus a strong warm cast: closer in parameter space, further in looks.
    champion = evaluate_student(FixedStudent({"adjust": {"brightness": 40}}), rows)
    candidate = evaluate_student(FixedStudent({"adjust": {"exposure": 40, "temperature": 90}}), rows)
    assert candidate.overall > champion.overall
    assert candidate.rendered_summary()["All"]["delta_e"] > champion.rendered_summary()["All"]["delta_e"]
    v1, v2 = _register(settings, "champion"), _register(settings, "candidate")
    registry.record_eval(settings, v1, "T", champion.record())
    registry.record_eval(settings, v2, "T", candidate.record())
    registry.promote(settings, v1)
    with pytest.raises(GateRejected, match="rendered_delta_e"):
        registry.promote(settings, v2, test_set="T")
    assert registry.resolve(settings) == v1
    decision = registry.decisions(settings, v2)[-1]
    assert not decision["promoted"] and decision["decided_by"] == "rendered_delta_e"
    passed = {c["criterion"]: c["passed"] for c in decision["criteria"]}
    assert passed == {"overall": True, "rendered_delta_e": False, "request_accuracy": None}
    assert {m.version: m.gate for m in registry.list_models(settings)}[v2] == "rejected by rendered_delta_e"
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_dir)}
    shown = subprocess.run([sys.executable, "-m", "toneflow", "models", "decisions", v2], env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "rejected, decided by rendered_delta_e" in shown.stdout
    # the same looks with the champion's request accuracy beaten: the request criterion decides
    worse_requests = {**candidate.record(), "rendered": champion.record()["rendered"],
                      "requests": {"set": "S", "accuracy": 0.5}}
    registry.record_eval(settings, v1, "T", {**champion.record(), "requests": {"set": "S", "accuracy": 0.8}})
    registry.record_eval(settings, v2, "T", worse_requests)
    with pytest.raises(GateRejected, match="request_accuracy"):
        registry.promote(settings, v2, test_set="T")


def test_eval_never_judges_rows_whose_group_was_trained_on() -> None:
    train = [make_example("golden hour", GOLDEN), make_example("film noir", NOIR)]
    test = [make_example("make it golden hour please", GOLDEN), make_example("sunset glow", GOLDEN),
            make_example("moody noir", NOIR), make_example("rainy day", NOIR)]
    result = evaluate_student(FixedStudent(GOLDEN), test, train_rows=train, render=False)
    assert result.excluded_shared_groups == 1 and result.ids == [test[1].id, test[2].id, test[3].id]
    # the teacher reads "sunset glow" as golden hour and "moody noir" as film noir: trained looks in
    # new wording; "rainy day" is a look of its own, whatever its label says
    assert result.looks == {"seen_looks": [0, 1], "unseen_looks": [2]}
    assert result.record()["excluded_shared_groups"] == 1


def test_group_splits_are_stable_as_data_grows(settings: Settings) -> None:
    import random

    from streams.vocabulary import INTENTS, surface_form

    rng = random.Random(7)
    prompts = list(dict.fromkeys(surface_form(rng.choice(INTENTS[:30]), rng) for _ in range(600)))
    rows = [make_example(p, {"adjust": {"contrast": 1 + i % 40}}) for i, p in enumerate(prompts)]
    half = len(rows) // 2
    small = snapshot.create(settings, rows[:half], policy="export_rate", source={"kind": "test"})
    big = snapshot.create(settings, rows, policy="export_rate", source={"kind": "test"})
    before = {r.id: s for s in snapshot.SPLITS for r in small.rows(s)}
    after = {r.id: s for s in snapshot.SPLITS for r in big.rows(s)}
    assert len(set(before.values())) == 3 and all(after[i] == s for i, s in before.items())

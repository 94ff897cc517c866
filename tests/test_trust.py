"""A served edit is a free teacher label only when the serving layer vouches for it (schemas/trust.py).

Forged ``served_by``, an edit changed after serving, a genuine signature moved onto another prompt:
each is relabelled by the teacher and counted. The real server signs what it serves (checked on the
broker), the simulator signs as the server does, and processes on one data dir share one key.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from foundation.settings import Settings
from schemas import validate_edit
from schemas.events import PromptEvent, ServedBy, to_json_bytes
from schemas.trust import KEY_FILE, sign_served, signing_key, vouched
from streams import guard
from streams.guard import needs_teacher_call

KEY = b"k" * 32
TEACHER = ServedBy(kind="teacher", model="openai", version="gpt", variant="A")
EDIT = validate_edit({"adjust": {"contrast": 20}})


def _event(prompt: str = "moody", served_by: ServedBy | None = TEACHER, edit=EDIT, sig: str | None = "sign") -> PromptEvent:
    if sig == "sign":
        sig = sign_served(KEY, prompt, served_by, edit) if served_by and edit else None
    return PromptEvent(event_id="e", project_id="p", user_id="u", ts=datetime(2026, 11, 25, tzinfo=UTC), prompt=prompt,
                       served_by=served_by, served_edit=edit, served_sig=sig)


def test_only_a_vouched_teacher_edit_is_reused(monkeypatch):
    monkeypatch.setattr(guard, "UNVOUCHED", guard.Counter())
    good = _event()
    assert vouched(KEY, good) and not needs_teacher_call(good, KEY)
    assert validate_edit(PromptEvent.model_validate_json(to_json_bytes(good)).served_edit) == EDIT  # wire round trip
    assert not needs_teacher_call(PromptEvent.model_validate_json(to_json_bytes(good)), KEY)

    forged = _event(sig=None)  # an app wrote served_by: teacher itself
    tampered = good.model_copy(update={"served_edit": validate_edit({"adjust": {"contrast": 90}})})
    moved = good.model_copy(update={"prompt": "bright and airy"})  # a genuine signature on another prompt
    other_model = good.model_copy(update={"served_by": ServedBy(kind="teacher", model="offline", version="gpt",
                                                                variant="A")})
    wrong_key = _event(sig=sign_served(b"x" * 32, "moody", TEACHER, EDIT))
    for event in (forged, tampered, moved, other_model, wrong_key):
        assert not vouched(KEY, event) and needs_teacher_call(event, KEY)
    assert guard.UNVOUCHED == {"unsigned": 1, "bad_signature": 4}

    student = _event(served_by=ServedBy(kind="student", model="minilm", version="v3", variant="B"))
    assert vouched(KEY, student) and needs_teacher_call(student, KEY)  # signed, but a student's edit is never a label
    assert needs_teacher_call(_event(edit=None), KEY) and needs_teacher_call(_event(served_by=None), KEY)
    assert sum(guard.UNVOUCHED.values()) == 5  # student-served and unserved are not "unvouched"


def test_the_key_comes_from_settings_or_one_shared_file(tmp_path):
    assert signing_key(Settings(data_dir=tmp_path / "a", serve_signing_key="from-env-" + "x" * 30)) == \
        b"from-env-" + b"x" * 30
    data = tmp_path / "shared"
    code = ("import sys; from foundation.settings import Settings; from schemas.trust import signing_key; "
            f"sys.stdout.write(signing_key(Settings(data_dir={str(data)!r})).decode())")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env) for _ in range(4)]
    keys = {p.communicate(timeout=60)[0] for p in procs}  # four processes racing to create it
    assert len(keys) == 1 and len(keys.pop()) == 64
    path = data / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(Settings(data_dir=data)) == path.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_simulated_teacher_traffic_is_signed_like_the_servers(settings):
    from schemas.events import TOPIC_PROMPTS
    from streams.simulator import plan_traffic

    plan = plan_traffic(settings, 20, seed=3)
    prompts = [PromptEvent.model_validate_json(v) for topic, _, v, _ in plan.wire if topic == TOPIC_PROMPTS]
    assert prompts and all(not needs_teacher_call(p, signing_key(settings)) for p in prompts)


def test_teacher_spend_counts_the_relabelled_unvouched(tmp_path):
    from schemas.events import LabelEvent, TeacherRef
    from warehouse import tables
    from warehouse.catalog import connect
    from warehouse.writer import write_batch

    wh = Settings(data_dir=tmp_path / "data")

    def label(i, reused):
        return tables.label_row(LabelEvent(
            event_id=f"e{i}", project_id="p", user_id="u", prompt="moody", prompt_ts=datetime(2026, 11, 25, tzinfo=UTC),
            teacher=TeacherRef(model="offline", version="v"), edit=EDIT, latency_ms=1, served_by=TEACHER,
            served_edit=EDIT, reused_served_edit=reused, ts=datetime(2026, 11, 25, tzinfo=UTC)),
            tables.Source("toneflow.labels", 0, i))

    rows = [label(0, True), label(1, False), label(2, False)]
    write_batch(wh, "labels", rows, topic="toneflow.labels", partition=0, first_offset=0, last_offset=2)
    got = connect(wh).execute("SELECT reused_served, relabelled_unvouched, calls FROM teacher_spend").fetchall()
    assert got == [(1, 2, 2)]


@pytest.mark.broker
def test_the_server_signs_the_prompt_events_it_sends(tmp_path, broker_settings):
    from confluent_kafka import Consumer

    from foundation.kafka import consumer_config, create_topics
    from schemas.events import TOPIC_PROMPTS
    from serving.testing import live_server

    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=broker_settings.kafka_bootstrap,
                        serve_reload_interval_s=0.2)
    create_topics(settings, [TOPIC_PROMPTS])
    project = f"p-{uuid.uuid4().hex[:8]}"
    with live_server(settings, emit_events=True) as url, httpx.Client(base_url=url, timeout=60) as client:
        resp = client.post("/v1/edit", json={"prompt": "golden hour glow", "project_id": project, "user_id": "u1"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["served_by"]["kind"] == "teacher"  # no student yet: the default plan serves the teacher
        consumer = Consumer(consumer_config(settings, f"test-trust-{uuid.uuid4().hex[:8]}"))
        found = None
        try:
            consumer.subscribe([TOPIC_PROMPTS])
            deadline = time.monotonic() + 60
            while found is None and time.monotonic() < deadline:
                msg = consumer.poll(1.0)
                if msg is not None and not msg.error() and msg.key() == project.encode():
                    found = PromptEvent.model_validate_json(msg.value())
        finally:
            consumer.close()
    assert found is not None and found.event_id == body["event_id"] and found.served_sig
    assert vouched(signing_key(settings), found) and not needs_teacher_call(found, signing_key(settings))
    assert needs_teacher_call(found.model_copy(update={"served_sig": None}), signing_key(settings))


def _reference_sig(key: bytes, prompt: str, served_by: ServedBy, edit) -> str:
    """The signature as first specified: HMAC-SHA256 of the sorted-keys compact JSON of the dict."""
    import hashlib
    import hmac
    import json

    body = {"prompt": prompt, "served_by": served_by.model_dump(mode="json"), "served_edit": edit.canonical_dict()}
    message = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def test_the_signature_message_is_the_sorted_json_of_the_signed_fields():
    """``_message`` is put together from parts (and caches the edit's part): it must stay the same
    bytes as the dict encoding, or every server's signatures stop checking out in the worker."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from schemas.edit import Edit
    from tests.contract_strategies import valid_bytes

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_bytes(Edit), valid_bytes(ServedBy), valid_bytes(PromptEvent),
           st.sampled_from(["moody", "a \"quoted\"\\ prompt\n", "ünïcödé 🌅 \u2028"]))
    def check(edit_raw: bytes, served_raw: bytes, event_raw: bytes, prompt: str) -> None:
        edit, served_by = Edit.model_validate_json(edit_raw), ServedBy.model_validate_json(served_raw)
        for text in (PromptEvent.model_validate_json(event_raw).prompt, prompt):
            assert sign_served(KEY, text, served_by, edit) == _reference_sig(KEY, text, served_by, edit)
            # asked twice: the second message is made from the edit's cached part
            assert sign_served(KEY, text, served_by, edit) == _reference_sig(KEY, text, served_by, edit)
        # a selective edit: its nested keys sort differently from the contract order
        fixed = validate_edit({"selective_adjust": {"red": {"saturation": -5, "hue": 3}},
                               "filter": {"name": "warm_GoldenHour", "intensity": 40},
                               "adjust": {"shadows": 7, "contrast": -2}})
        assert sign_served(KEY, prompt, TEACHER, fixed) == _reference_sig(KEY, prompt, TEACHER, fixed)

    check()

"""The HTTP API for real: uvicorn on a loopback port, a real registry with MiniLM students, the
embedded broker. Auth and 4xx answers, hot reload under concurrent load, A/B arms, prompt events."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from foundation.settings import Settings
from schemas import validate_edit
from serving.ab import Arm, TrafficPlan, reset_plan, save_plan
from serving.testing import edit, live_server, register_students, wait_for
from trainer import registry

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, broker_settings: Settings):
    """A registry with three MiniLM versions (v1 current) behind a live server with auth and events."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("serving") / "data", kafka_bootstrap=broker_settings.kafka_bootstrap,
                        serve_token=TOKEN, serve_reload_interval_s=0.2)
    from foundation.kafka import create_topics
    from schemas.events import TOPIC_PROMPTS

    create_topics(settings, [TOPIC_PROMPTS])
    versions = register_students(settings, 3)
    registry.promote(settings, versions[0])
    with live_server(settings) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield settings, client, versions


def test_auth_and_clear_answers_to_bad_requests(served) -> None:
    _, client, _ = served
    anon = httpx.Client(base_url=str(client.base_url), timeout=30)
    assert edit(anon).status_code == 401
    wrong = edit(anon, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "TONEFLOW_SERVE_TOKEN" in wrong.json()["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"
    post = lambda body, **kw: client.post("/v1/edit", content=body, headers={"content-type": "application/json"}, **kw)  # noqa: E731
    bad = post(b'{"prompt": "golden hour",')
    assert bad.status_code == 400 and bad.json()["error"] == "bad_json"
    assert post(b"\xff\xfe\x00garbage").status_code == 400
    assert post(b"[1, 2]").json()["error"] == "bad_body"
    missing = client.post("/v1/edit", json={"prompt": "golden hour", "user_id": "u"})
    assert missing.status_code == 422 and "project_id" in missing.json()["detail"]
    blank = client.post("/v1/edit", json={"prompt": "   ", "project_id": "p", "user_id": "u"})
    assert blank.status_code == 422 and "blank" in blank.json()["detail"]
    assert client.post("/v1/edit", json={"prompt": 7, "project_id": "p", "user_id": "u"}).status_code == 422
    assert client.post("/v1/edit", json={"prompt": "x", "project_id": "p", "user_id": "u" * 500}).status_code == 422
    long = edit(client, prompt="sunset " * 100)
    assert long.status_code == 413 and "500 characters" in long.json()["detail"]
    huge = post(b'{"prompt": "' + b"a" * 1_000_000 + b'"}')
    assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"
    assert client.get("/v1/edit").status_code == 405
    health = client.get("/healthz").json()  # still alive and counting
    assert health["status"] == "ok" and health["requests"]["http_401"] >= 2 and health["requests"]["http_413"] >= 2
    assert client.get("/openapi.json").json()["paths"]["/v1/edit"]["post"]


def test_edit_is_served_and_its_prompt_event_lands_on_the_broker(served) -> None:
    from confluent_kafka import Consumer

    from foundation.kafka import consumer_config
    from schemas.events import TOPIC_PROMPTS, PromptEvent

    settings, client, versions = served
    project = f"p-{uuid.uuid4().hex[:8]}"
    resp = edit(client, prompt="make it moodier", user="u-event", project=project)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert validate_edit(body["edit"]).canonical_dict() == body["edit"]
    assert body["served_by"] == {"kind": "student", "model": "minilm", "version": versions[0],
                                "variant": "student"}
    consumer = Consumer(consumer_config(settings, f"test-serving-{uuid.uuid4().hex[:8]}"))
    try:
        consumer.subscribe([TOPIC_PROMPTS])
        found = None
        deadline = time.monotonic() + 30
        while found is None and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            event = PromptEvent.model_validate_json(msg.value())
            if event.event_id == body["event_id"]:
                found = (msg.key(), event)
    finally:
        consumer.close()
    assert found is not None, "the prompt event never reached toneflow.prompts"
    key, event = found
    assert key == project.encode() and event.prompt == "make it moodier" and event.user_id == "u-event"
    assert event.served_by.model_dump() == body["served_by"]
    assert event.served_edit.canonical_dict() == body["edit"]
    assert wait_for(lambda: client.get("/healthz").json()["events"]["delivered"] >= 1)


def test_promote_under_concurrent_load_changes_version_with_zero_failures(served) -> None:
    settings, client, versions = served
    seen: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer(n: int) -> None:
        with httpx.Client(base_url=str(client.base_url), headers=AUTH, timeout=30) as own:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = edit(own, prompt=f"golden hour {i}", user=f"u{n}-{i}", project=f"p{n}-{i}")
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        seen.append(r.json()["served_by"]["version"])
                except httpx.HTTPError as err:
                    failures.append(repr(err))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(seen) >= 20, 30)
        registry.promote(settings, versions[1], force=True)
        wait_for(lambda: seen[-1:] == [versions[1]], 30)
        n_after = len(seen)
        wait_for(lambda: len(seen) >= n_after + 20, 30)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not failures, failures[:5]
    assert seen[0] == versions[0] and seen[-1] == versions[1]
    switch = seen.index(versions[1])
    assert all(v == versions[1] for v in seen[switch + 8:])  # at most one in-flight batch per client after the swap
    health = client.get("/healthz").json()
    assert health["models"] == {"current": versions[1]} and health["reloads"] >= 1
    assert health["batches"]["current"]["items"] >= health["batches"]["current"]["batches"]


def test_a_damaged_model_is_not_loaded_and_the_old_one_keeps_serving(served) -> None:
    settings, client, versions = served
    before = edit(client).json()["served_by"]["version"]
    heads = registry.model_path(settings, versions[2]) / "heads.safetensors"
    heads.write_bytes(heads.read_bytes()[:-8] + b"garbage!")
    registry.promote(settings, versions[2], force=True)
    try:
        health = wait_for(lambda: (h := client.get("/healthz").json())["failed_loads"] and h, 10)
        assert versions[2] in health["last_load_error"] and "damaged" in health["last_load_error"]
        assert edit(client).json()["served_by"]["version"] == before
    finally:
        registry.rollback(settings)


def test_ab_arms_are_deterministic_and_fallback_is_labelled(served) -> None:
    settings, client, versions = served
    plan = TrafficPlan("exp-t", (Arm("teacher", "teacher", 0.5), Arm("student", "student", 0.5, versions[0])),
                       "teacher")
    users = {plan.assign(f"user-{i}").variant: f"user-{i}" for i in range(50)}
    save_plan(settings, plan)
    try:
        assert wait_for(lambda: client.get("/healthz").json()["plan"]["experiment"] == "exp-t")
        for variant, user in users.items():
            answers = [edit(client, user=user).json()["served_by"] for _ in range(3)]
            assert all(a == answers[0] for a in answers)  # same user, same arm, same model
            assert answers[0]["variant"] == variant
            expected = ("teacher", "offline") if variant == "teacher" else ("student", "minilm")
            assert (answers[0]["kind"], answers[0]["model"]) == expected
            if variant == "student":
                assert answers[0]["version"] == versions[0]  # the pinned version, not `current`
        # A student arm whose model cannot be loaded is answered by the teacher, tagged as a fallback.
        save_plan(settings, TrafficPlan("exp-f", (Arm("ghost", "student", 1.0, "v000099"),), "ghost"))
        assert wait_for(lambda: client.get("/healthz").json()["plan"]["experiment"] == "exp-f")
        fb = edit(client).json()["served_by"]
        assert fb["variant"] == "ghost-fallback" and (fb["kind"], fb["model"]) == ("teacher", "offline")
        health = client.get("/healthz").json()
        assert health["status"] == "degraded" and health["missing_models"] == ["v000099"]
        assert health["requests"]["fallbacks"] >= 1
    finally:
        reset_plan(settings)


def test_predict_cli_single_and_file(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from foundation.settings import get_settings
    from toneflow.cli import main

    settings, _, _ = served
    monkeypatch.setenv("TONEFLOW_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    cur = registry.resolve(settings)
    try:
        assert main(["predict", "golden hour", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["model"] == {"kind": "student", "name": "minilm", "version": cur} and validate_edit(out["edit"])
        src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
        prompts = ["golden hour", "Morocco"] * 100
        src.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(prompts)))
        assert main(["predict", "--input", str(src), "--output", str(dst)]) == 0
        rows = [json.loads(line) for line in dst.read_text().splitlines()]
        assert [r["id"] for r in rows] == list(range(200)) and rows[0]["model"]["version"] == cur
        assert rows[0]["edit"] == out["edit"] == rows[198]["edit"]  # batched predictions equal single ones
        src.write_text('{"id": 1, "prompt": "ok"}\n{"id": 2}\n')
        assert main(["predict", "--input", str(src), "--output", str(dst)]) == 2
        assert "in.jsonl:2" in capsys.readouterr().err
        assert main(["predict"]) == 2
    finally:
        get_settings.cache_clear()

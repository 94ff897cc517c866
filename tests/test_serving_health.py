"""``/healthz`` for real: a live server on a real registry of MiniLM students, driven into each degraded
state (a damaged model refused at reload, a model slot answered by the teacher, a damaged ONNX export
served through PyTorch, a traffic plan the reloader cannot read, prompt events the broker never
acknowledges) and back out; 200 while serving, 503 before the lifespan has started."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from foundation.settings import Settings
from serving.ab import Arm, TrafficPlan, plan_path, reset_plan, save_plan
from serving.testing import edit, free_port, live_server, register_students, wait_for
from trainer import onnx_export, registry


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """Three MiniLM versions, v1 current with its export, v2 with a damaged export, v3 plain; events off."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("health") / "data", serve_reload_interval_s=0.2)
    versions = register_students(settings, 3)
    registry.promote(settings, versions[0])
    registry.store_export(settings, versions[1])
    damaged = registry.export_dir(settings, versions[1]) / onnx_export.INT8_FILE
    damaged.write_bytes(damaged.read_bytes()[:-16] + b"0123456789abcdef")
    with live_server(settings, emit_events=False) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield settings, client, versions


def _health(client: httpx.Client) -> dict:
    r = client.get("/healthz")
    assert r.status_code == 200, r.text  # degraded or not, a serving server says 200
    return r.json()


def _kinds(client: httpx.Client) -> set[str]:
    return {reason["kind"] for reason in _health(client)["reasons"]}


def _back_to_ok(client: httpx.Client) -> None:
    assert wait_for(lambda: _health(client)["status"] == "ok", 30), _health(client)


def test_a_healthy_server_says_ok_with_no_reasons(served) -> None:
    _, client, versions = served
    health = _health(client)
    assert health["status"] == "ok" and health["reasons"] == []
    assert health["models"] == {"current": versions[0]} and health["runtimes"] == {"current": "onnx-int8"}


def test_a_damaged_model_refused_at_reload_is_reported_while_the_old_one_serves(served) -> None:
    settings, client, versions = served
    heads = registry.model_path(settings, versions[2]) / "heads.safetensors"
    good = heads.read_bytes()
    heads.write_bytes(good[:-8] + b"garbage!")
    registry.promote(settings, versions[2], force=True)
    try:
        assert wait_for(lambda: "model_refused" in _kinds(client), 30), _health(client)
        health = _health(client)
        [reason] = [r for r in health["reasons"] if r["kind"] == "model_refused"]
        assert health["status"] == "degraded" and reason["model"] == "current"
        assert "damaged" in reason["detail"] and f"still serving {versions[0]}" in reason["detail"]
        assert edit(client).json()["served_by"]["version"] == versions[0]
    finally:
        registry.rollback(settings)
        heads.write_bytes(good)
    _back_to_ok(client)


def test_a_model_slot_answered_by_the_teacher_is_a_fallback(served) -> None:
    settings, client, versions = served
    plan = TrafficPlan("exp-h", (Arm("student", "student", 1.0, "v999999"),), "student")
    save_plan(settings, plan)
    try:
        assert wait_for(lambda: "fallback" in _kinds(client), 30), _health(client)
        health = _health(client)
        assert health["status"] == "degraded" and health["missing_models"] == ["v999999"]
        assert any(r["kind"] == "fallback" and r["model"] == "v999999" and "teacher" in r["detail"]
                   for r in health["reasons"])
        assert edit(client).json()["served_by"]["variant"] == "student-fallback"
    finally:
        reset_plan(settings)
    _back_to_ok(client)


def test_a_damaged_export_served_through_pytorch_is_a_fallback(served) -> None:
    settings, client, versions = served
    registry.promote(settings, versions[1], force=True)  # its stored export was damaged in the fixture
    try:
        assert wait_for(lambda: _health(client)["models"] == {"current": versions[1]}, 30)
        health = _health(client)
        assert health["status"] == "degraded" and health["runtimes"] == {"current": "torch-int8"}
        [reason] = health["reasons"]
        assert reason["kind"] == "fallback" and "PyTorch" in reason["detail"] and "damaged" in reason["detail"]
        assert edit(client).json()["served_by"]["version"] == versions[1]  # still served
    finally:
        registry.rollback(settings)
    _back_to_ok(client)


def test_a_plan_the_reloader_cannot_read_is_reported_and_the_last_good_plan_serves(served) -> None:
    settings, client, versions = served
    path = plan_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json", encoding="utf-8")
    try:
        assert wait_for(lambda: "reloader_failing" in _kinds(client), 30), _health(client)
        [reason] = [r for r in _health(client)["reasons"] if r["kind"] == "reloader_failing"]
        assert "traffic plan could not be read" in reason["detail"]
        assert edit(client).status_code == 200
    finally:
        path.unlink()
    _back_to_ok(client)


def test_prompt_events_the_broker_never_acknowledges_are_reported(tmp_path) -> None:
    # Nothing listens on this port: the producer is created (librdkafka connects lazily) and every
    # event times out after serving.events' message.timeout.ms.
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=f"127.0.0.1:{free_port()}")
    with live_server(settings, emit_events=True) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert _health(client)["status"] == "ok"
        assert edit(client).status_code == 200  # the request itself never waits for Kafka
        assert wait_for(lambda: "events_undeliverable" in _kinds(client), 60), _health(client)
        health = _health(client)
        [reason] = health["reasons"]
        assert health["status"] == "degraded" and "failing" in reason["detail"] and health["events"]["failed"] >= 1


def test_healthz_is_503_until_the_server_has_started(tmp_path) -> None:
    from serving.app import create_app

    app = create_app(Settings(data_dir=tmp_path / "data"), emit_events=False)

    async def probe() -> httpx.Response:  # the app without its lifespan: nothing loaded yet
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.get("/healthz")

    r = asyncio.run(probe())
    assert r.status_code == 503 and r.json()["status"] == "starting" and r.json()["reasons"][0]["kind"] == "starting"

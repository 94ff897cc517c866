"""The worker with a slow remote teacher (a real local HTTP server speaking /v1/chat/completions).

Each prompt needs a teacher request; the labeler keeps many in flight. A SIGKILL in the middle
must lose nothing: offsets commit only past labelled prompts, so the restart labels the rest (the
ones already answered come from the teacher's cache). A teacher that rejects the API key crashes
the worker with nothing acked.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from schemas.events import PromptEvent
from streams.producer import EventProducer
from tests.streams_harness import count, start_worker, stop, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


class SlowTeacher:
    def __init__(self, server: HTTPServer, latency: float, status: int = 200) -> None:
        self.latency, self.status, self.requests = latency, status, 0
        server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(self)
        self.base_url = server.url_for("/v1")

    def __call__(self, request: Request) -> Response:
        self.requests += 1
        if self.status != 200:
            return Response(json.dumps({"error": {"message": "bad key"}}), status=self.status,
                            content_type="application/json")
        time.sleep(self.latency)
        body = request.get_json()
        prompt = body["messages"][-1]["content"]
        edit = {"adjust": {"temperature": len(prompt) % 60 + 1, "contrast": 10}}
        return Response(json.dumps({
            "id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": json.dumps(edit)}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}),
            status=200, content_type="application/json")


@pytest.fixture
def teacher_server():
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def _use(monkeypatch: pytest.MonkeyPatch, teacher: SlowTeacher, in_flight: int) -> None:
    for name, value in {"TEACHER": "openai", "OPENAI_BASE_URL": teacher.base_url, "OPENAI_API_KEY": "sk-test",
                        "TEACHER_CONCURRENCY": str(in_flight), "LABEL_IN_FLIGHT": str(in_flight),
                        "TEACHER_MAX_RETRIES": "0"}.items():
        monkeypatch.setenv(f"TONEFLOW_{name}", value)


def _send(settings, n: int) -> None:
    with EventProducer(settings) as producer:
        for i in range(n):
            producer.send_prompt(PromptEvent(event_id=f"e{i}", project_id=f"p{i}", user_id="u",
                                             ts=datetime.now(UTC), prompt=f"look {i}: soft warm light"))


def _labels(settings) -> tuple[int, int]:
    from warehouse.catalog import connect

    return connect(settings).execute("SELECT count(*), count(DISTINCT event_id) FROM labels").fetchone()


def test_sigkill_with_teacher_calls_in_flight_loses_nothing(fresh_broker_settings, teacher_server, monkeypatch,
                                                            tmp_path):
    settings = fresh_broker_settings
    teacher = SlowTeacher(teacher_server, latency=0.5)
    _use(monkeypatch, teacher, in_flight=32)
    _send(settings, 240)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        wait_for(lambda: count(settings, "SELECT count(*) FROM labels") >= 40, 240, "the first labels")
        assert count(settings, "SELECT count(*) FROM labels") < 240, "no call was in flight at the kill"
        worker.kill()
        worker.wait(10)
        worker = start_worker(settings, log)
        wait_for(lambda: count(settings, "SELECT count(*) FROM labels") >= 240, 240, "every prompt labelled")
    finally:
        stop(worker)
    assert _labels(settings) == (240, 240), log.read_text()[-2000:]


def test_teacher_rejecting_the_key_crashes_the_worker_and_acks_nothing(fresh_broker_settings, teacher_server,
                                                                       monkeypatch, tmp_path):
    settings = fresh_broker_settings
    teacher = SlowTeacher(teacher_server, latency=0.0, status=401)
    _use(monkeypatch, teacher, in_flight=8)
    _send(settings, 20)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        assert worker.wait(240) != 0, log.read_text()[-2000:]
        teacher.status = 200  # the key is fixed: the restart labels every prompt, none was acked
        worker = start_worker(settings, log)
        wait_for(lambda: count(settings, "SELECT count(*) FROM labels") >= 20, 240, "every prompt labelled")
    finally:
        stop(worker)
    assert _labels(settings) == (20, 20)

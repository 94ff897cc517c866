"""The OpenAI-compatible teacher against a real local HTTP server speaking /v1/chat/completions.

The server (pytest-httpserver, threaded) is scripted per request: a plan maps (prompt, attempt)
to an answer — good, 429 with Retry-After, 500, a stall past the client timeout, garbage, or
schema-invalid JSON. Nothing in the openai SDK is patched: requests go over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from schemas.filters import FILTER_NAMES
from teacher import get_teacher
from teacher.exceptions import TeacherConfigError
from teacher.openai_teacher import OpenAITeacher
from teacher.retry import Backoff

STALL_S = 0.8
TIMEOUT_S = 0.3
FAST = Backoff(base_s=0.01, max_s=0.05, max_retry_after_s=5.0)


def good_edit(prompt: str) -> dict:
    """What the fake model answers for ``prompt``: distinct per prompt, always valid."""
    return {"adjust": {"temperature": len(prompt) % 60 + 1, "contrast": 10}}


class FaultServer:
    """Answers chat completions as ``plan(prompt, attempt)`` says; records what it delivered."""

    def __init__(self, server: HTTPServer, plan: Callable[[str, int], str]) -> None:
        self.plan = plan
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.delivered_ok: Counter[str] = Counter()  # valid edits actually sent back per prompt
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.bodies: list[dict] = []
        server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(self)
        self.base_url = server.url_for("/v1")

    @property
    def requests(self) -> int:
        return sum(self.attempts.values())

    def _completion(self, body: dict, content: str, usage: tuple[int, int]) -> Response:
        message: dict = {"role": "assistant", "content": content}
        if "tools" in body:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function", "function": {"name": "apply_edit", "arguments": content}}]}
        payload = {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
        }
        return Response(json.dumps(payload), status=200, content_type="application/json")

    def __call__(self, request: Request) -> Response:
        body = request.get_json()
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.attempts[prompt] += 1
            attempt = self.attempts[prompt]
            self.bodies.append(body)
        action = self.plan(prompt, attempt)
        usage = (100 + len(prompt), 20 + attempt)
        if action == "stall":
            time.sleep(STALL_S)  # the client has given up by now; nothing it reads is billed
            return Response("{}", status=200, content_type="application/json")
        if action == "429":
            return Response(json.dumps({"error": {"message": "slow down"}}), status=429,
                            headers={"retry-after-ms": "20"}, content_type="application/json")
        if action in ("500", "400", "401"):
            return Response(json.dumps({"error": {"message": f"scripted {action}"}}), status=int(action),
                            content_type="application/json")
        if action == "no_response_format" and "response_format" in body:
            return Response(json.dumps({"error": {"message": "response_format is not supported"}}), status=400,
                            content_type="application/json")
        content = {
            "garbage": "Sure! For that look I would warm it up and add some contrast.",
            "invalid": json.dumps({"adjust": {"contrast": 250, "warmth": 12}}),
            "unusable": json.dumps({"filter": {"name": "NoSuchLook", "intensity": 50}}),
        }.get(action, json.dumps(good_edit(prompt)))
        with self.lock:
            self.prompt_tokens += usage[0]
            self.completion_tokens += usage[1]
            if action not in ("garbage", "invalid", "unusable"):
                self.delivered_ok[prompt] += 1
        return self._completion(body, content, usage)


@pytest.fixture
def httpserver_threaded():
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def make_teacher(fake: FaultServer, tmp_path: Path, **kw) -> OpenAITeacher:
    options = dict(model="fake-gpt", base_url=fake.base_url, api_key="sk-test", concurrency=4, timeout_s=TIMEOUT_S,
                   max_retries=4, price_input_per_1m=0.5, price_output_per_1m=1.5, backoff=FAST,
                   cache_path=tmp_path / "cache.sqlite3", seed=0)
    return OpenAITeacher(**{**options, **kw})


def run(teacher: OpenAITeacher, prompts: list[str]):
    return asyncio.run(teacher.label(prompts))


def test_good_answer_cache_and_request_shape(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "ok")
    teacher = make_teacher(fake, tmp_path)
    [lab] = run(teacher, ["golden hour"])
    assert lab.ok and lab.edit.canonical_dict() == good_edit("golden hour") and not lab.cached
    assert (lab.prompt_tokens, lab.completion_tokens) == (111, 21)
    assert lab.cost == pytest.approx((111 * 0.5 + 21 * 1.5) / 1e6)
    assert lab.teacher.model == "fake-gpt" and lab.teacher.version.startswith("fake-gpt@p")
    body = fake.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert "selective_adjust" in json.dumps(body["response_format"]["json_schema"]["schema"])
    assert all(name in body["messages"][0]["content"] for name in FILTER_NAMES)
    # Repeats (normalised) cost nothing: same batch, next batch, and a new process on the same file.
    labels = run(teacher, ["Golden hour!", "golden hour", "GOLDEN HOUR"])
    assert fake.requests == 1 and all(x.cached and x.cost == 0 and x.edit == lab.edit for x in labels)
    asyncio.run(teacher.aclose())
    again = make_teacher(fake, tmp_path)
    assert run(again, ["golden hour"])[0].cached and fake.requests == 1
    other_model = make_teacher(fake, tmp_path, model="other-model")
    assert not run(other_model, ["golden hour"])[0].cached and fake.requests == 2


def test_retry_after_is_honoured_then_success(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "429" if a <= 2 else "ok")
    teacher = make_teacher(fake, tmp_path, backoff=Backoff(base_s=0.0, max_s=0.0))
    start = time.perf_counter()
    [lab] = run(teacher, ["blue hour"])
    assert lab.ok and fake.attempts["blue hour"] == 3
    assert time.perf_counter() - start >= 0.04  # two waits of retry-after-ms=20


def test_transient_failures_exhaust_retries_as_retryable(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "500")
    [lab] = run(make_teacher(fake, tmp_path, max_retries=2), ["moody"])
    assert not lab.ok and lab.error_kind == "teacher_unavailable" and lab.retryable
    assert "HTTP 500" in lab.error and fake.attempts["moody"] == 3


def test_stall_times_out_and_is_retried(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "stall" if a == 1 else "ok")
    [lab] = run(make_teacher(fake, tmp_path), ["foggy"])
    assert lab.ok and fake.attempts["foggy"] == 2
    assert lab.prompt_tokens == fake.prompt_tokens  # the stalled answer was never billed to us


def test_4xx_is_not_retried_and_auth_errors_raise(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "400" if p == "bad" else "401")
    teacher = make_teacher(fake, tmp_path)
    [lab] = run(teacher, ["bad"])
    assert lab.error_kind == "teacher_rejected" and not lab.retryable and fake.attempts["bad"] == 1
    with pytest.raises(TeacherConfigError, match="TONEFLOW_OPENAI_API_KEY"):
        run(teacher, ["anything"])


def test_garbage_is_asked_again_then_failed_with_reason(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "garbage")
    [lab] = run(make_teacher(fake, tmp_path), ["sunset"])
    assert lab.error_kind == "teacher_invalid_output" and not lab.retryable
    assert "not JSON" in lab.error and fake.attempts["sunset"] == 2
    assert lab.prompt_tokens == fake.prompt_tokens > 0  # failed answers still cost money


def test_schema_invalid_output_is_repaired_or_rejected(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "invalid" if p == "warm" else "unusable")
    teacher = make_teacher(fake, tmp_path)
    fixed, unusable = run(teacher, ["warm", "odd"])
    assert fixed.ok and fixed.edit.canonical_dict() == {"adjust": {"contrast": 100, "temperature": 12}}
    assert any(r.startswith("clamped") for r in fixed.repairs) and any(r.startswith("renamed_key") for r in fixed.repairs)
    assert unusable.error_kind == "teacher_invalid_output" and "nothing valid left" in unusable.error
    strict = make_teacher(fake, tmp_path, max_repairs=0, cache_path=None)
    assert run(strict, ["warm"])[0].error_kind == "teacher_invalid_output"


def test_tool_calling_fallback_when_endpoint_lacks_json_schema(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "no_response_format")
    teacher = make_teacher(fake, tmp_path)
    [lab] = run(teacher, ["teal"])
    assert lab.ok and lab.edit.canonical_dict() == good_edit("teal") and teacher.structured_output == "tools"
    assert fake.bodies[-1]["tool_choice"]["function"]["name"] == "apply_edit"


def test_spend_limit_stops_calling_and_says_so(httpserver_threaded, tmp_path):
    fake = FaultServer(httpserver_threaded, lambda p, a: "ok")
    # ~$0.01 per call at these prices; the limit allows three.
    teacher = make_teacher(fake, tmp_path, concurrency=1, price_input_per_1m=100.0, price_output_per_1m=0.0,
                           spend_limit_usd=0.03)
    labels = run(teacher, [f"look {i}" for i in range(6)])
    assert [lab.ok for lab in labels] == [True, True, True, False, False, False]
    assert labels[3].error_kind == "spend_limit" and labels[3].retryable
    assert "TONEFLOW_TEACHER_SPEND_LIMIT_USD" in labels[3].error and fake.requests == 3


def test_twenty_percent_faults_nothing_lost_nothing_duplicated(httpserver_threaded, tmp_path):
    faults = ["429", "500", "stall", "garbage"]

    def plan(prompt: str, attempt: int) -> str:
        rng = random.Random(f"{prompt}/{attempt}")
        return rng.choice(faults) if rng.random() < 0.2 else "ok"

    fake = FaultServer(httpserver_threaded, plan)
    teacher = make_teacher(fake, tmp_path, concurrency=8)
    prompts = [f"look number {i}" for i in range(60)] + ["look number 3", "look number 7"]
    labels = run(teacher, prompts)
    assert [lab.prompt for lab in labels] == prompts
    for lab in labels:
        assert lab.ok or (lab.error_kind and lab.error), lab
        if lab.ok:
            assert lab.edit.canonical_dict() == good_edit(lab.prompt)
    assert sum(lab.ok for lab in labels) >= 58
    assert all(n == 1 for n in fake.delivered_ok.values())  # no prompt was answered twice
    failed = fake.requests - sum(fake.delivered_ok.values())
    assert 0.1 * fake.requests <= failed <= 0.35 * fake.requests, (failed, fake.requests)
    # Cost totals match what the server reported, per label and for the teacher.
    assert sum(lab.prompt_tokens for lab in labels) == fake.prompt_tokens == teacher.meter.prompt_tokens
    assert sum(lab.completion_tokens for lab in labels) == fake.completion_tokens
    expected = (fake.prompt_tokens * 0.5 + fake.completion_tokens * 1.5) / 1e6
    assert sum(lab.cost for lab in labels) == pytest.approx(expected) == teacher.meter.cost_usd
    before = fake.requests
    again = run(teacher, prompts)
    assert fake.requests == before + sum(not lab.ok for lab in labels)  # cache hits make no HTTP call
    assert all(lab.cached for lab, first in zip(again, labels, strict=True) if first.ok)


def test_get_teacher_builds_openai_from_settings(settings, tmp_path):
    from foundation.settings import Settings

    with pytest.raises(TeacherConfigError, match="TONEFLOW_OPENAI_API_KEY"):
        get_teacher(settings, "openai")
    s = Settings(data_dir=tmp_path, openai_base_url="http://127.0.0.1:9/v1", openai_model="m", teacher_concurrency=3)
    t = get_teacher(s, "openai")
    assert isinstance(t, OpenAITeacher) and t.concurrency == 3 and t.cache.path == tmp_path / "teacher" / "cache.sqlite3"
    with pytest.raises(TeacherConfigError, match="unknown teacher"):
        get_teacher(s, "gpt5")

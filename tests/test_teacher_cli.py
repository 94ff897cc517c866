"""``toneflow teach`` as a user runs it: single prompts, --json, resumable files, deferred prompts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from foundation.settings import get_settings
from schemas import validate_edit
from toneflow.cli import main


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_teach_prints_the_edit_json_from_the_real_entry_point(tmp_path: Path) -> None:
    from teacher.offline import OfflineTeacher

    OfflineTeacher(cache_dir=tmp_path / "data" / "cache").warm()  # what a previous run leaves behind
    env = {"PATH": "/usr/bin:/bin", "TONEFLOW_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "toneflow", "teach", "golden hour"], capture_output=True,
                            text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    edit = validate_edit(json.loads(result.stdout)).canonical_dict()
    assert edit["adjust"]["temperature"] > 0 and edit["filter"]["name"] == "warm_GoldenHour"


def test_teach_json_has_provenance(settings, capsys) -> None:
    assert main(["teach", "make it moodier", "remove the dog", "--json"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["teacher"]["model"] == "offline" and first["teacher"]["version"].startswith("offline-")
    assert first["edit"]["adjust"]["shadows"] < 0 and second["edit"] == {}
    assert {"latency_ms", "cost", "prompt_tokens", "completion_tokens", "repairs", "error"} <= set(first)


def test_teach_file_is_resumable_and_never_duplicates(settings, tmp_path: Path, capsys) -> None:
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": f"p{i}", "prompt": p} for i, p in enumerate(["golden hour", "foggy morning", "Morocco", "crop it"])]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows[:3] + [rows[0]]))
    out = tmp_path / "labels.jsonl"
    assert main(["teach", "--input", str(prompts), "--output", str(out), "--batch-size", "2"]) == 0
    assert [r["id"] for r in _lines(out)] == ["p0", "p1", "p2"]
    # A crash mid-write leaves a torn line; the rerun cuts it and labels only what is missing.
    with out.open("a") as fh:
        fh.write('{"id": "p3", "prompt": "cro')
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["teach", "--input", str(prompts), "--output", str(out)]) == 0
    labels = _lines(out)
    assert [r["id"] for r in labels] == ["p0", "p1", "p2", "p3"] and labels[3]["edit"] == {}
    assert "skipped 3" in capsys.readouterr().err
    assert {r["prompt"] for r in labels} == {r["prompt"] for r in rows}
    for r in labels:
        validate_edit(r["edit"])
        assert r["teacher"]["model"] == "offline"


def test_bad_input_line_is_a_one_line_error(settings, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "prompt": "warm"}\n{"text": "no id"}\n')
    assert main(["teach", "--input", str(bad), "--output", str(tmp_path / "o.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and '"id" and "prompt"' in err and err.count("\n") == 1


def test_openai_outage_defers_prompts_and_rerun_labels_them(settings, tmp_path: Path, capsys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server = HTTPServer(threaded=True)
    server.start()
    try:
        state = {"down": True}

        def handler(request):
            if state["down"]:
                return Response('{"error": {"message": "overloaded"}}', status=503, content_type="application/json")
            body = request.get_json()
            payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                       "choices": [{"index": 0, "finish_reason": "stop", "message": {
                           "role": "assistant", "content": '{"adjust": {"temperature": 20}}'}}],
                       "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}
            return Response(json.dumps(payload), content_type="application/json")

        server.expect_request("/v1/chat/completions").respond_with_handler(handler)
        for name, value in {"TEACHER": "openai", "OPENAI_BASE_URL": server.url_for("/v1"), "OPENAI_MODEL": "fake",
                            "TEACHER_MAX_RETRIES": "0", "TEACHER_TIMEOUT_S": "2"}.items():
            monkeypatch.setenv(f"TONEFLOW_{name}", value)
        get_settings.cache_clear()
        prompts = tmp_path / "p.jsonl"
        prompts.write_text('{"id": "a", "prompt": "warm"}\n{"id": "b", "prompt": "warmer"}\n')
        out = tmp_path / "o.jsonl"
        assert main(["teach", "--input", str(prompts), "--output", str(out)]) == 3
        assert "deferred (teacher_unavailable: 2)" in capsys.readouterr().err and _lines(out) == []
        state["down"] = False
        assert main(["teach", "--input", str(prompts), "--output", str(out)]) == 0
        labels = _lines(out)
        assert [r["id"] for r in labels] == ["a", "b"] and all(r["teacher"]["model"] == "fake" for r in labels)
        assert sum(r["cost"] for r in labels) == pytest.approx(2 * (50 * 0.15 + 10 * 0.60) / 1e6)
    finally:
        server.clear()
        server.stop()
        get_settings.cache_clear()

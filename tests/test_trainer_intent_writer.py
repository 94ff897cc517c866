"""The LLM intent writer against a fake OpenAI-compatible endpoint (pytest-httpserver)."""

from __future__ import annotations

import json

import pytest

from foundation.settings import Settings
from trainer.intent_writer import LLMIntentWriter, llm_writer

httpserver_mod = pytest.importorskip("pytest_httpserver")


def _reply(text: str) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


def test_writer_parses_lines_and_survives_a_failed_batch(httpserver, tmp_path) -> None:  # noqa: ANN001
    settings = Settings(data_dir=tmp_path, teacher="openai", openai_base_url=httpserver.url_for("/v1"),
                        openai_api_key="sk-test", openai_model="tiny", teacher_max_retries=0)
    httpserver.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_json(
        _reply("1. cool tone\n- crisp morning light\n\n\"Chilly dawn\"\nthis line is far too long to be a look request ok"))
    httpserver.expect_ordered_request("/v1/chat/completions", method="POST").respond_with_data("boom", status=500)
    writer = llm_writer(settings)
    assert isinstance(writer, LLMIntentWriter)
    out = writer.write(["cool morning"] + [f"look {i}" for i in range(20)], per_prompt=2, batch=1)
    assert out == ["cool tone", "crisp morning light", "chilly dawn"]
    sent = json.loads(httpserver.log[0][0].get_data())
    assert sent["model"] == "tiny" and "cool morning" in sent["messages"][1]["content"]


def test_offline_when_openai_not_configured(tmp_path) -> None:  # noqa: ANN001
    assert llm_writer(Settings(data_dir=tmp_path)) is None

"""``toneflow schemas validate`` on hostile files: every line gets its verdict, empty input fails."""

from __future__ import annotations

import json

import pytest

from toneflow.cli import main

GOOD = json.dumps({"adjust": {"contrast": 10}}).encode()
BAD = json.dumps({"adjust": {"contrast": 500}}).encode()


def _validate(tmp_path, capsys, data: bytes) -> tuple[int, list[str], str]:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    code = main(["schemas", "validate", str(path)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_binary_and_too_deep_lines_are_reported_one_by_one(tmp_path, capsys):
    lines = [GOOD, b"\xff\xfe\x00binary\x89", b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000, BAD, GOOD]
    code, out, err = _validate(tmp_path, capsys, b"\n".join(lines) + b"\n")
    assert code == 1 and "Traceback" not in err
    assert out[0] == "line 1: ok (edit)" and out[5] == "line 6: ok (edit)"
    assert out[1].startswith("line 2: not UTF-8 text (binary data?)")
    assert out[2].startswith("line 3: ") and "nested too deeply" in out[2]
    assert out[3].startswith("line 4: ") and "nested too deeply" in out[3]
    assert out[4].startswith("line 5: invalid edit: adjust.contrast")
    assert "2 valid, 4 invalid" in err


def test_a_single_too_deep_document_is_reported_not_raised(tmp_path, capsys):
    code, out, _ = _validate(tmp_path, capsys, b"[" * 100_000 + b"]" * 100_000)
    assert code == 1 and len(out) == 1 and "nested too deeply" in out[0]


@pytest.mark.parametrize("data", [b"", b"\n\n  \n", b"[]"])
def test_empty_input_is_an_error_with_a_clear_message(tmp_path, capsys, data):
    code, out, err = _validate(tmp_path, capsys, data)
    assert code == 1 and out == []
    assert err.startswith("error: no records in ") and "JSON Lines" in err


def test_empty_stdin_is_an_error_too(capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["schemas", "validate", "-"]) == 1
    assert "no records in stdin" in capsys.readouterr().err


def test_binary_model_output_can_still_be_repaired(tmp_path, capsys):
    path = tmp_path / "out.txt"
    path.write_bytes(b'Sure \xff here: {"adjust": {"contrast": 180}}')
    assert main(["schemas", "repair", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["edit"] == {"adjust": {"contrast": 100}}

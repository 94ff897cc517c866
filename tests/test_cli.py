"""The CLI as a user sees it: --help everywhere, one-line errors, real files."""

import json
import subprocess
import sys

import pytest

from toneflow.cli import build_parser


def _run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "toneflow", *args], capture_output=True, text=True, input=stdin,
                          timeout=120)


def _all_commands(parser, prefix=()):
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            yield (*prefix, name)
            yield from _all_commands(sub, (*prefix, name))


def test_every_subcommand_has_help():
    commands = list(_all_commands(build_parser()))
    assert ("broker", "start") in commands and ("schemas", "validate") in commands
    for command in commands:
        result = _run(*command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: toneflow" in result.stdout


def test_filters_json():
    names = json.loads(_run("schemas", "filters", "--json").stdout)
    assert len(names) >= 24 and "faded_HighNoon" in names


def test_validate_five_malformed_records_gives_five_distinct_errors(tmp_path):
    bad = [
        {"adjust": {"contrast": 250}},
        {"adjust": {"warmth": 10}},
        {"filter": {"name": "instagram_Valencia", "intensity": 50}},
        {"schema_version": 1, "event_id": "e", "project_id": "p", "user_id": "u", "ts": "2026-11-25T10:00:00Z",
         "prompt": ""},
        {"schema_version": 2, "event_id": "x", "project_id": "p", "user_id": "u", "ts": "2026-11-25T10:00:00Z"},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(b) for b in bad) + "\n")
    result = _run("schemas", "validate", str(path))
    assert result.returncode == 1
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("line ")]
    assert len(lines) == 5 and len(set(ln.split(":", 1)[1] for ln in lines)) == 5
    for field in ("adjust.contrast", "adjust.warmth", "filter.name", "prompt", "schema_version"):
        assert any(field in ln for ln in lines), field

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"adjust": {"contrast": 10}}))
    assert _run("schemas", "validate", str(good)).returncode == 0


def test_repair_prints_fixed_edit_and_repairs():
    result = _run("schemas", "repair", "-", stdin='{"adjust": {"contrast": 180, "saturation": -20.4}}')
    out = json.loads(result.stdout)
    assert result.returncode == 0
    assert out["edit"] == {"adjust": {"contrast": 100, "saturation": -20}}
    assert {r["kind"] for r in out["repairs"]} == {"clamped", "rounded"}


def test_errors_are_one_line_without_traceback(tmp_path):
    result = _run("schemas", "validate", str(tmp_path / "missing.json"))
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: cannot read")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [("config",), ("config", "--json"), ("env",)])
def test_info_commands(args):
    result = _run(*args)
    assert result.returncode == 0 and result.stdout


def test_config_masks_secrets(monkeypatch):
    monkeypatch.setenv("TONEFLOW_OPENAI_API_KEY", "sk-abc")
    out = json.loads(_run("config", "--json").stdout)
    assert out["openai_api_key"] == "***"

"""``toneflow schemas``: the filter catalogue, strict validation, repair, JSON Schema generation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from foundation.cli import add_command
from foundation.errors import ToneflowError

KINDS = ("auto", "edit", "prompt", "export", "label", "accepted", "retrain", "dlq")


def register(sub: argparse._SubParsersAction) -> None:
    schemas = add_command(sub, "schemas", "inspect and check the edit and event contracts")
    ssub = schemas.add_subparsers(dest="action", metavar="ACTION", required=True)

    filters = add_command(ssub, "filters", "list the filter catalogue")
    filters.add_argument("--json", action="store_true", help="print the names as a JSON list")
    filters.set_defaults(func=_filters)

    validate = add_command(ssub, "validate", "strictly validate edits or events in a file",
                           "Validate every record in FILE (a JSON object, a JSON array, or JSON Lines; - for stdin).\n"
                           "Each bad record is reported with the path and value of the offending field.\n"
                           "Exit code 1 if any record is invalid.")
    validate.add_argument("file", help="JSON / JSONL file, or - for stdin")
    validate.add_argument("--kind", choices=KINDS, default="auto",
                          help="contract to check against; auto guesses from the record's keys")
    validate.set_defaults(func=_validate)

    repair = add_command(ssub, "repair", "repair model output into a valid edit and list the repairs",
                         "Read model output (JSON, possibly wrapped in prose or fences) from FILE or stdin and\n"
                         "print {\"edit\": ..., \"repairs\": [...]}: ranges clamped, unknown keys and filter names\n"
                         "dropped, every change listed. One result per line for JSON Lines input.")
    repair.add_argument("file", help="file with one output, JSON Lines of outputs, or - for stdin")
    repair.set_defaults(func=_repair)

    generate = add_command(ssub, "generate", "write the JSON Schema files in schemas/json/ from the models")
    generate.add_argument("--check", action="store_true", help="only check for drift; exit 1 if stale")
    generate.set_defaults(func=_generate)


def _read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as err:
        msg = f"cannot read {path}: {err.strerror}"
        raise ToneflowError(msg) from None


def _read(path: str) -> str:
    # Model output: a stray undecodable byte must not stop the repair of the rest.
    return _read_bytes(path).decode("utf-8", errors="replace")


def _parse(text: str) -> Any:
    """json.loads, with nesting too deep for the parser reported as bad input, not raised."""
    try:
        return json.loads(text)
    except RecursionError:
        msg = "not JSON this tool can check: nested too deeply; real records are a few levels deep"
        raise ValueError(msg) from None


def _records(data: bytes) -> list[tuple[str, Any]]:
    """(where, record) pairs from a JSON document or JSON Lines; a line that cannot be read or parsed
    becomes a ValueError saying why, so one bad line (binary, too deep) never hides the others."""
    try:
        doc = _parse(data.decode("utf-8").strip())
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        pass
    else:
        if isinstance(doc, list):
            return [(f"item {i}", rec) for i, rec in enumerate(doc)]
        return [("record", doc)]
    out: list[tuple[str, Any]] = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"line {n}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            out.append((where, ValueError(f"not UTF-8 text (binary data?): {err.reason} at byte {err.start}")))
            continue
        try:
            out.append((where, _parse(line)))
        except json.JSONDecodeError as err:
            out.append((where, ValueError(f"not JSON: {err.msg} at column {err.colno}")))
        except ValueError as err:
            out.append((where, err))
    return out


def guess_kind(record: Any) -> str:
    if not isinstance(record, dict):
        return "edit"
    keys = set(record)
    if keys <= {"adjust", "selective_adjust", "filter"}:
        return "edit"
    for marker, kind in (("trigger_id", "retrain"), ("stage", "dlq"), ("label_source", "accepted"),
                         ("teacher", "label"), ("prompt", "prompt")):
        if marker in keys:
            return kind
    return "export"


def _validate(args: argparse.Namespace) -> int:
    from schemas.exceptions import SchemaViolation
    from schemas.validation import validate_edit, validate_event

    bad = 0
    records = _records(_read_bytes(args.file))
    if not records:
        source = "stdin" if args.file == "-" else args.file
        msg = f"no records in {source}: it is empty (or an empty array); give a JSON object, a JSON array or JSON Lines"
        raise ToneflowError(msg)
    for where, record in records:
        kind = guess_kind(record) if args.kind == "auto" else args.kind
        try:
            if isinstance(record, ValueError):
                raise record
            validate_edit(record) if kind == "edit" else validate_event(kind, record)
        except SchemaViolation as err:
            bad += 1
            print(f"{where}: {err}")
            for extra in err.violations[1:]:
                print(f"{' ' * len(where)}  also {extra}")
        except ValueError as err:
            bad += 1
            print(f"{where}: {err}")
        except RecursionError:
            bad += 1
            print(f"{where}: nested too deeply to validate; real records are a few levels deep")
        else:
            print(f"{where}: ok ({kind})")
    print(f"{len(records) - bad} valid, {bad} invalid", file=sys.stderr)
    return 1 if bad else 0


def _repair(args: argparse.Namespace) -> int:
    from schemas.exceptions import RepairFailed
    from schemas.validation import repair_edit

    text = _read(args.file)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    inputs = lines if len(lines) > 1 and all(ln.lstrip().startswith("{") for ln in lines) else [text]
    failed = 0
    for item in inputs:
        try:
            result = repair_edit(item)
        except RepairFailed as err:
            failed += 1
            print(json.dumps({"error": str(err)}))
            continue
        print(json.dumps(result.as_dict(), default=str))
    return 1 if failed else 0


def _filters(args: argparse.Namespace) -> int:
    from schemas.filters import FILTER_CATALOGUE_VERSION, FILTERS

    if args.json:
        print(json.dumps([look.name for look in FILTERS]))
        return 0
    print(f"filter catalogue {FILTER_CATALOGUE_VERSION}: {len(FILTERS)} looks")
    width = max(len(look.name) for look in FILTERS)
    for look in FILTERS:
        print(f"  {look.name:<{width}}  {look.description}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from schemas.jsonschema import JSON_DIR, drifted, write_all

    if args.check:
        stale = drifted()
        if stale:
            print(f"stale JSON Schemas in {JSON_DIR}: {', '.join(stale)}; run `toneflow schemas generate`")
            return 1
        print("JSON Schemas are up to date")
        return 0
    for path in write_all():
        print(f"wrote {path}")
    return 0

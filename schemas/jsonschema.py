"""Generate the JSON Schema files app producers in other languages validate against.

The files in ``schemas/json/`` are generated from the pydantic models, never edited by hand:
``toneflow schemas generate`` writes them, and a test fails when they drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.edit import Edit
from schemas.events import EVENT_MODELS

JSON_DIR = Path(__file__).parent / "json"
_MODELS: dict[str, type[BaseModel]] = {"edit": Edit, **EVENT_MODELS}


def render_all() -> dict[str, str]:
    """File name → JSON Schema text, for every contract."""
    out = {}
    for name, model in _MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://toneflow.dev/schemas/{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return out


def write_all(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in render_all().items():
        path = directory / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drifted(directory: Path = JSON_DIR) -> list[str]:
    """Names of schema files that are missing or differ from what the models generate."""
    stale = []
    for filename, text in render_all().items():
        path = directory / filename
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(filename)
    return stale

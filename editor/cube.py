"""3D LUT tables and the .cube files the filter catalogue is baked into.

A table is float32 of shape (N, N, N, 3) indexed ``[b, g, r]``, so flattening it gives red
fastest: the line order of the Adobe/IRIDAS .cube format and of Pillow's Color3DLUT. Look files
are generated on first use from their recipe (``editor.looks``) into a cache directory, under a
name that includes the recipe version and a hash of the recipe, and written atomically (temp file,
fsync, rename), so a stale or half-written file is never read.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np

from editor.colour import F32
from editor.exceptions import EditorError

DEFAULT_SIZE = 33


def identity_table(size: int = DEFAULT_SIZE) -> np.ndarray:
    axis = np.linspace(0.0, 1.0, size, dtype=F32)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([r, g, b], axis=-1)


def sample_table(table: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Trilinear lookup of ``rgb`` (..., 3) in [0, 1]: the numpy reference path, and how a look is
    composed after the adjust chain when an edit's LUT is built."""
    n = table.shape[0]
    pos = np.clip(rgb, 0.0, 1.0).reshape(-1, 3) * (n - 1)
    i0 = np.minimum(pos.astype(np.int32), n - 2)
    f = (pos - i0).astype(F32)
    r0, g0, b0 = i0[:, 0], i0[:, 1], i0[:, 2]
    fr, fg, fb = f[:, :1], f[:, 1:2], f[:, 2:3]
    out = np.zeros_like(pos, dtype=F32)
    for db, wb in ((0, 1 - fb), (1, fb)):
        for dg, wg in ((0, 1 - fg), (1, fg)):
            w = wb * wg
            out += w * ((1 - fr) * table[b0 + db, g0 + dg, r0] + fr * table[b0 + db, g0 + dg, r0 + 1])
    return out.reshape(rgb.shape)


def write_cube(path: Path, table: np.ndarray, title: str, comment: str = "") -> None:
    """Write ``table`` as a .cube file atomically (temp file, fsync, rename)."""
    n = table.shape[0]
    head = [f'TITLE "{title}"'] + [f"# {line}" for line in comment.splitlines() if line]
    head += [f"LUT_3D_SIZE {n}", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer: two threads (or processes) building the same look must not share a temp file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write("\n".join(head) + "\n")
        np.savetxt(fh, table.reshape(-1, 3), fmt="%.6f")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_cube(path: Path) -> np.ndarray:
    """Read a 3D .cube file (LUT_3D_SIZE, optional DOMAIN_MIN/MAX) into a [b, g, r] table in [0, 1]."""
    size, lo, hi, rows = None, np.zeros(3, F32), np.ones(3, F32), []
    try:
        lines = Path(path).read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        msg = f"cannot read LUT {path}: {err}; delete it and it will be regenerated"
        raise EditorError(msg) from None
    for line in lines:
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        if not word or word.startswith("#") or word == "TITLE":
            continue
        if word == "LUT_3D_SIZE":
            size = int(line.split()[1])
        elif word == "DOMAIN_MIN":
            lo = np.array(line.split()[1:4], F32)
        elif word == "DOMAIN_MAX":
            hi = np.array(line.split()[1:4], F32)
        elif word[0].isdigit() or word[0] in "-.":
            rows.append(line)
    if size is None or len(rows) != size**3:
        msg = f"{path} is not a complete 3D .cube (size {size}, {len(rows)} rows); delete it to regenerate"
        raise EditorError(msg)
    table = np.array(" ".join(rows).split(), dtype=F32).reshape(size, size, size, 3)
    return np.clip((table - lo) / (hi - lo), 0.0, 1.0)


def look_key(name: str, size: int) -> str:
    """File name of a look's cached .cube: changes whenever its recipe or the catalogue changes."""
    from editor.looks import RECIPE_VERSION, RECIPES
    from schemas.filters import FILTER_CATALOGUE_VERSION

    digest = hashlib.sha256(f"{FILTER_CATALOGUE_VERSION}|{RECIPES[name]!r}".encode()).hexdigest()[:12]
    return f"{name}.v{RECIPE_VERSION}.{digest}.{size}.cube"


def generate_look(name: str, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Evaluate a look's recipe on an identity grid (no file involved)."""
    from editor.looks import RECIPES

    if name not in RECIPES:
        msg = f"unknown filter {name!r}; see `toneflow schemas filters` for the catalogue"
        raise EditorError(msg)
    return RECIPES[name](identity_table(size))


@lru_cache(maxsize=64)
def look_table(name: str, size: int, cache_dir: Path) -> np.ndarray:
    """The table of look ``name``: read from ``cache_dir`` or generated, cached and returned."""
    from editor.looks import RECIPES

    path = cache_dir / look_key(name, size)
    if not path.exists():
        recipe = RECIPES.get(name)
        table = generate_look(name, size)
        write_cube(path, table, name, f"toneflow look: {recipe.description if recipe else ''}\n"
                   f"generated from editor/looks.py; ops: {recipe.ops if recipe else ()}")
    return read_cube(path)

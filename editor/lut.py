"""Fold the pointwise part of an edit into one 3D LUT and apply it with a C-backed lookup.

``edit_table`` evaluates the adjust/selective chain on an identity grid, then samples the look's
table at the result and blends by intensity: lerping the table equals lerping the output, because
interpolation is linear in the table values (grading.md §4). Building a 33³ table costs a few ms
and is cached by the edit's canonical JSON, so a video pays it once.

Backends (grading.md §2.2, measured on the 2-core dev machine): PyOpenColorIO tetrahedral,
uint8→uint8 (≈15–19 ms per 1080p frame), Pillow Color3DLUT trilinear (≈31–47 ms), and a numpy
trilinear reference for tests. Images are split into horizontal strips run on a thread pool;
both C backends release the GIL while they work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from editor.colour import F32
from editor.cube import identity_table, look_table, sample_table
from editor.exceptions import EditorError
from editor.pointwise import apply_pointwise, has_pointwise

Backend = Literal["auto", "ocio", "pillow", "numpy"]
BACKENDS: tuple[Backend, ...] = ("auto", "ocio", "pillow", "numpy")
_MIN_STRIP_ROWS = 64  # below this, thread hand-off costs more than it saves


def edit_table(canonical: dict[str, Any], size: int, cache_dir: Path) -> np.ndarray | None:
    """The composed table of an edit's pointwise part, or None when it has none (identity)."""
    adjust = canonical.get("adjust", {})
    selective = canonical.get("selective_adjust", {})
    flt = canonical.get("filter")
    if not has_pointwise(adjust, selective) and not flt:
        return None
    grid = identity_table(size)
    out = apply_pointwise(grid, adjust, selective)
    if flt:
        alpha = flt["intensity"] / 100
        out = out + alpha * (sample_table(look_table(flt["name"], size, cache_dir), out) - out)
    return np.clip(out, 0.0, 1.0).astype(F32)


@lru_cache(maxsize=8)
def _executor(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="toneflow-lut")


def resolve_threads(threads: int) -> int:
    return threads if threads > 0 else max(1, os.cpu_count() or 1)


def run_rows(fn: Callable[[int, int], None], rows: int, threads: int) -> None:
    """Call ``fn(start, stop)`` on ``threads`` contiguous row ranges covering ``range(rows)``, in
    parallel (the caller's thread runs the last range). Row ranges of C-contiguous frames are
    contiguous memory, so OpenCV/OCIO calls on them need no copies."""
    parts = max(1, min(threads, rows // _MIN_STRIP_ROWS))
    if parts == 1:
        fn(0, rows)
        return
    bounds = np.linspace(0, rows, parts + 1).astype(int).tolist()
    futures = [_executor(threads).submit(fn, a, b) for a, b in zip(bounds[:-2], bounds[1:-1])]
    try:
        fn(bounds[-2], bounds[-1])
    finally:
        for fut in futures:
            fut.result()


def run_in_strips(fn: Callable[[np.ndarray, np.ndarray], None], img: np.ndarray, out: np.ndarray,
                  threads: int) -> None:
    """Call ``fn(src_strip, dst_strip)`` on horizontal strips of ``img``/``out`` in parallel."""
    run_rows(lambda a, b: fn(img[a:b], out[a:b]), img.shape[0], threads)


class LutApplier:
    """Applies one table to uint8 RGB images. Build once per edit, call once per frame."""

    def __init__(self, table: np.ndarray, backend: Backend = "auto", threads: int = 0) -> None:
        self.table = table
        self.threads = resolve_threads(threads)
        self.backend = self._pick(backend)
        if self.backend == "ocio":
            self._apply = self._ocio_apply()
        elif self.backend == "pillow":
            self._apply = self._pillow_apply()
        else:
            self._apply = self._numpy_apply

    @staticmethod
    def _pick(backend: Backend) -> Backend:
        if backend not in BACKENDS:
            msg = f"unknown LUT backend {backend!r}; choose one of {', '.join(BACKENDS)}"
            raise EditorError(msg)
        if backend in ("auto", "ocio"):
            try:
                import PyOpenColorIO  # noqa: F401
            except ImportError:
                if backend == "ocio":
                    msg = "the ocio LUT backend needs PyOpenColorIO: pip install opencolorio"
                    raise EditorError(msg) from None
                return "pillow"
            return "ocio"
        return backend

    def _ocio_apply(self) -> Callable[[np.ndarray, np.ndarray], None]:
        import PyOpenColorIO as ocio

        n = self.table.shape[0]
        lut = ocio.Lut3DTransform()
        lut.setGridSize(n)
        # OCIO stores blue fastest ([r, g, b]); our tables are red fastest ([b, g, r]).
        lut.setData(np.ascontiguousarray(self.table.transpose(2, 1, 0, 3)).reshape(-1))
        # Tetrahedral is both more accurate and faster than trilinear in OCIO (grading.md §2.2).
        lut.setInterpolation(ocio.INTERP_TETRAHEDRAL)
        cpu = ocio.Config.CreateRaw().getProcessor(lut).getOptimizedCPUProcessor(
            ocio.BIT_DEPTH_UINT8, ocio.BIT_DEPTH_UINT8, ocio.OPTIMIZATION_DEFAULT)

        def apply(src: np.ndarray, dst: np.ndarray) -> None:
            h, w, _ = src.shape
            dst[...] = src
            cpu.apply(ocio.PackedImageDesc(dst, w, h, 3, ocio.BIT_DEPTH_UINT8, 1, 3, 3 * w))

        return apply

    def _pillow_apply(self) -> Callable[[np.ndarray, np.ndarray], None]:
        from PIL import Image, ImageFilter

        lut = ImageFilter.Color3DLUT(self.table.shape[0], self.table.reshape(-1))

        def apply(src: np.ndarray, dst: np.ndarray) -> None:
            dst[...] = np.asarray(Image.fromarray(np.ascontiguousarray(src)).filter(lut))

        return apply

    def _numpy_apply(self, src: np.ndarray, dst: np.ndarray) -> None:
        rgb = sample_table(self.table, src.astype(F32) / 255.0)
        dst[...] = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """A new uint8 H×W×3 image; ``img`` is not modified."""
        out = np.empty_like(img)
        run_in_strips(self._apply, np.ascontiguousarray(img), out, self.threads)
        return out

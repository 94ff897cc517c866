"""The blind review queue: sampled test prompts, each with a teacher and a student render.

A model version's queue is built once per console process (one batched student forward pass and
one teacher call for all its prompts) and kept, so later pages only look items up. Prompts come
from the test set the gate uses (trainer/snapshot.py ``benchmark_set``) when the version names its
snapshot, else from the warehouse's accepted prompts whose intent falls in the test split by hash.
Which side shows the teacher is drawn per (version, item, reviewer): stable on reload, independent
between reviewers, never shown on the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from foundation.settings import Settings
from schemas.edit import Edit

PHOTO_WIDTH = 300  # px: two renders side by side fit a laptop screen


@dataclass(frozen=True)
class Item:
    item_id: str
    prompt: str
    photo: str
    student_edit: Edit
    teacher_edit: Edit
    student_model: str
    teacher_model: str
    teacher_version: str


def item_id(prompt_norm: str) -> str:
    return hashlib.sha256(prompt_norm.encode()).hexdigest()[:16]


def teacher_side(version: str, item: str, reviewer: str) -> str:
    """'left' or 'right': where this reviewer sees the teacher's render of this item."""
    digest = hashlib.sha256(f"{version}\x00{item}\x00{reviewer}".encode()).digest()
    return "left" if digest[0] % 2 == 0 else "right"


def test_prompts(settings: Settings, version: str, k: int) -> list[str]:
    """Up to ``k`` distinct test prompts for ``version``, the same sample on every call."""
    from schemas.text import normalise_prompt
    from trainer import registry, snapshot

    prompts: list[str] = []
    snap_id = registry.manifest(settings, version).get("snapshot")
    if snap_id or snapshot.read_pin(settings):
        try:
            _, rows = snapshot.benchmark_set(settings, snapshot.load(settings, snap_id or "latest"))
            prompts = [r.prompt for r in rows]
        except Exception:  # noqa: BLE001 - a missing snapshot: fall back to the warehouse below
            prompts = []
    if not prompts:
        from warehouse.catalog import connect

        con = connect(settings)
        try:
            everything = [str(p) for (p,) in con.execute(
                "SELECT DISTINCT prompt FROM accepted_examples ORDER BY 1").fetchall()]
        finally:
            con.close()
        held_out = [p for p in everything if snapshot.split_of(normalise_prompt(p), settings.test_fraction,
                                                                  settings.val_fraction) == "test"]
        prompts = held_out or everything
    unique = sorted({normalise_prompt(p): p for p in prompts}.items())
    rng = random.Random(version)
    picked = rng.sample(unique, min(k, len(unique)))
    return [p for _, p in picked]


class ReviewQueue:
    """Queues per model version, the teacher, and rendered images (a small LRU), thread-safe."""

    def __init__(self, settings: Settings, image_cache: int = 256) -> None:
        self.settings = settings
        self._items: dict[str, list[Item]] = {}
        self._skipped: dict[tuple[str, str], set[str]] = {}
        self._images: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._image_cache = image_cache
        self._photos: dict[str, np.ndarray] = {}
        self._teacher: Any = None
        self._loop = asyncio.new_event_loop()  # one loop for the teacher: its clients stay bound to it
        self._lock = threading.Lock()
        # One render at a time: the browser asks for both sides at once, and two threads building the
        # same look's .cube file would share its temp name (editor/cube.py names it by process id).
        self._render_lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._teacher is not None and hasattr(self._teacher, "aclose"):
                self._loop.run_until_complete(self._teacher.aclose())
            self._loop.close()

    def items(self, version: str) -> list[Item]:
        with self._lock:
            if version not in self._items:
                self._items[version] = self._build(version)
            return self._items[version]

    def _build(self, version: str) -> list[Item]:
        from schemas.text import normalise_prompt
        from teacher import get_teacher
        from trainer.registry import load_student

        prompts = test_prompts(self.settings, version, self.settings.review_sample)
        if not prompts:
            return []
        student = load_student(self.settings, version)
        if self._teacher is None:
            self._teacher = get_teacher(self.settings)
        labels = self._loop.run_until_complete(self._teacher.label(prompts))
        edits = student.predict(prompts)
        return [Item(item_id(normalise_prompt(p)), p, _photo_for(p), s, lab.edit, student.name, lab.teacher.model,
                     lab.teacher.version)
                for p, s, lab in zip(prompts, edits, labels) if lab.edit is not None]

    def find(self, version: str, item: str) -> Item | None:
        return next((i for i in self.items(version) if i.item_id == item), None)

    def skip(self, version: str, reviewer: str, item: str) -> None:
        with self._lock:
            self._skipped.setdefault((version, reviewer), set()).add(item)

    def next_item(self, version: str, reviewer: str, done: set[str]) -> Item | None:
        """The first item this reviewer has neither rated nor skipped (skips last until restart)."""
        skipped = self._skipped.get((version, reviewer), set())
        return next((i for i in self.items(version) if i.item_id not in done | skipped), None)

    def image(self, version: str, item: Item, slot: str, reviewer: str) -> bytes:
        """PNG of slot 'original', 'left' or 'right' as this reviewer sees it."""
        role = slot if slot == "original" else ("teacher" if teacher_side(version, item.item_id, reviewer) == slot
                                                 else "student")
        key = (version, item.item_id, role)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        with self._render_lock:
            png = self._render(item, role)
        with self._lock:
            self._images[key] = png
            while len(self._images) > self._image_cache:
                self._images.popitem(last=False)
        return png

    def _render(self, item: Item, role: str) -> bytes:
        from PIL import Image

        from editor.render import Renderer, RenderOptions

        photo = self._photo(item.photo)
        if role != "original":
            edit = item.teacher_edit if role == "teacher" else item.student_edit
            photo = Renderer(edit, RenderOptions.from_settings(self.settings))(photo)
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def _photo(self, name: str) -> np.ndarray:
        if name not in self._photos:
            from PIL import Image

            from editor.samples import sample_photo

            img = Image.fromarray(sample_photo(name))
            height = round(img.height * PHOTO_WIDTH / img.width)
            self._photos[name] = np.asarray(img.resize((PHOTO_WIDTH, height), Image.Resampling.LANCZOS))
        return self._photos[name]


def _photo_for(prompt: str) -> str:
    from editor.samples import PHOTOS

    return PHOTOS[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(PHOTOS)]

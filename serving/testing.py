"""Helpers for serving tests and benchmarks: registry versions of a real (untrained) MiniLM student,
placeholder versions for pointer-only tests, and a live uvicorn server on a free loopback port that
is always stopped in ``finally``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from foundation.settings import Settings


def register_students(settings: Settings, n: int, layers: int = 0) -> list[str]:
    """``n`` registry versions of the MiniLM student with different (seeded, random) heads; ``layers``
    keeps the encoder's first N layers (``MiniLMConfig.layers``, 0 = all), to price a shallower one."""
    import torch

    from trainer import registry
    from trainer.students import structured
    from trainer.students.minilm import MiniLMConfig, MiniLMStudent

    student = MiniLMStudent(MiniLMConfig(layers=layers))
    versions = []
    for seed in range(n):
        torch.manual_seed(seed)
        student.heads = structured.build_heads(student.pooler.out_dim, kind=student.cfg.heads,
                                               per_value=student.pooler.per_value)
        staged = registry.stage(settings)
        student.save(staged)
        versions.append(registry.commit(settings, staged, {"student": "minilm", "snapshot": None, "parent": None,
                                                           "metrics": {"overall": 0.5}}))
    return versions


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(settings: Settings, **app_kwargs: Any) -> Iterator[str]:
    """Run ``create_app(settings)`` under uvicorn in a thread; yields the base URL."""
    import uvicorn

    from serving.app import create_app
    from serving.server import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(create_app(settings, **app_kwargs), "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 90
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                msg = "the test server did not start"
                raise RuntimeError(msg)
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_for(predicate: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def edit(client: httpx.Client, prompt: str = "golden hour", user: str = "u1", project: str = "p1",
         **kw: Any) -> httpx.Response:
    return client.post("/v1/edit", json={"prompt": prompt, "project_id": project, "user_id": user}, **kw)


def fake_version(settings: Settings, payload: str = "w") -> str:
    """A registry version with placeholder files: enough for pointer moves (never loaded)."""
    import json

    from trainer import registry

    staged = registry.stage(settings)
    (staged / "weights.bin").write_text(payload)
    (staged / "student.json").write_text(json.dumps({"student": "minilm"}))
    return registry.commit(settings, staged, {"student": "minilm", "snapshot": None, "parent": None,
                                              "metrics": {"overall": 0.5}})

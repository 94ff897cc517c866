"""The HTTP API: ``POST /v1/edit`` and ``GET /healthz`` (OpenAPI docs at ``/docs``).

``create_app(settings)`` builds the ASGI app: ``serving.front`` (auth, body limit, ``/v1/edit``)
in front of a FastAPI app (``/healthz``, the docs) whose lifespan starts (1) the reloader (traffic plan +
registry polling, see ``serving.models``), (2) the event emitter (``serving.events``), and stops
both on shutdown, flushing queued events.

Per request: authenticate (bearer token when ``TONEFLOW_SERVE_TOKEN`` is set, before the body is
read) → bound the body → validate →
assign the user to an arm (``serving.ab``) → answer with the arm's student (micro-batched, off the
event loop) or the teacher → queue the prompt event (``served_by`` + ``served_edit``) → respond.
Guarantees: every bad input gets a 4xx with a message that says what to fix (400 bad JSON or not
an object, 401 auth, 413 too large, 422 invalid fields); Kafka being down never fails a request; an unexpected
error is a logged 500, never a crash; a student arm whose model cannot be loaded is answered by the
teacher and tagged ``<variant>-fallback`` so it cannot pollute the arm's A/B numbers.
``/healthz`` says ``ok`` or ``degraded`` with reasons (``serving.health``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from foundation.settings import Settings
from schemas.edit import Edit
from schemas.events import PromptEvent, ServedBy
from schemas.trust import sign_served, signing_key
from serving.ab import Arm
from serving.batching import Batcher
from serving.events import EventEmitter
from serving.exceptions import NoStudentLoaded
from serving.front import EDIT_PATH, MAX_BODY_BYTES, EditRequest, EditResponse, Front, Refusal
from serving.health import health_report
from serving.models import Loader, ModelHolder, Reloader, load_version
from serving.server import tune_interpreter

log = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "EditRequest", "EditResponse", "Runtime", "create_app"]


class Runtime:
    """Everything a request needs; built in the lifespan, shared by the handlers."""

    def __init__(self, settings: Settings, loader: Loader, emit_events: bool, reload_interval_s: float | None):
        self.settings = settings
        self.holder = ModelHolder(settings, loader)
        self.reloader = Reloader(settings, self.holder, reload_interval_s)
        self.emitter = EventEmitter(settings, enabled=emit_events)
        self.batchers: dict[str, Batcher] = {}
        self.teacher: Any = None
        self._teacher_lock = asyncio.Lock()
        self.signing_key = signing_key(settings)  # once: it resolves the data dir (realpath) on every call
        self.started = time.time()
        self.counters: Counter[str] = Counter()
        self.by_variant: Counter[str] = Counter()
        self.served_versions: Counter[str] = Counter()

    async def get_teacher(self) -> Any:
        if self.teacher is None:
            async with self._teacher_lock:
                if self.teacher is None:
                    from teacher import get_teacher

                    self.teacher = await asyncio.to_thread(get_teacher, self.settings)
        return self.teacher

    async def answer(self, prompt: str, arm: Arm) -> tuple[Edit, ServedBy]:
        if arm.kind == "student":
            name = arm.model_key or "current"
            batcher = self.batchers.get(name)
            if batcher is None:
                batcher = self.batchers[name] = Batcher(self.holder, name, self.settings.serve_max_batch,
                                                        self.settings.serve_workers)
            try:
                edit, slot = await batcher.predict(prompt)
                return edit, ServedBy(kind="student", model=slot.student.name, version=slot.version,
                                    variant=arm.variant)
            except NoStudentLoaded as err:
                self.counters["fallbacks"] += 1
                log.warning("arm %s answered by the teacher: %s", arm.variant, err)
                return await self._teach(prompt, f"{arm.variant}-fallback")
        return await self._teach(prompt, arm.variant)

    async def _teach(self, prompt: str, variant: str) -> tuple[Edit, ServedBy]:
        teacher = await self.get_teacher()
        [label] = await teacher.label([prompt])
        if not label.ok:
            self.counters["teacher_failures"] += 1
            raise Refusal(503, "unavailable",
                          f"the teacher could not answer ({label.error_kind}: {label.error}); retry shortly",
                          {"Retry-After": "1"})
        return label.edit, ServedBy(kind="teacher", model=label.teacher.model, version=label.teacher.version,
                                    variant=variant)

    async def serve_edit(self, req: EditRequest) -> dict[str, Any]:
        """One ``POST /v1/edit``: arm → answer → prompt event → the ``EditResponse`` body."""
        started = time.perf_counter()
        arm = self.reloader.plan.assign(req.user_id)
        result, served = await self.answer(req.prompt, arm)
        event_id = uuid.uuid4().hex
        self.emitter.emit_lazy(lambda: PromptEvent(
            event_id=event_id, project_id=req.project_id, user_id=req.user_id, ts=datetime.now(UTC),
            prompt=req.prompt, served_by=served, served_edit=result,
            served_sig=sign_served(self.signing_key, req.prompt, served, result)))  # the labeler reuses only vouched edits
        self.by_variant[served.variant] += 1
        self.served_versions[f"{served.model}@{served.version}"] += 1
        return {"edit": result.canonical_dict(), "served_by": served.model_dump(), "event_id": event_id,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3)}

    def health(self) -> dict[str, Any]:
        plan = self.reloader.plan
        missing = sorted(plan.student_models() - set(self.holder.versions()))
        status, reasons = health_report(self.holder, self.reloader, self.emitter, missing)
        return {
            "status": status,
            "reasons": reasons,
            "missing_models": missing,
            "models": self.holder.versions(),
            "int8": self.settings.serve_quantize,
            "runtimes": self.holder.runtimes(),
            "plan": {**plan.to_dict(), "source": plan.source, "shares": plan.shares()},
            "requests": dict(self.counters),
            "by_variant": dict(self.by_variant),
            "served_versions": dict(self.served_versions),
            "reloads": self.holder.reloads,
            "failed_loads": self.holder.failed_loads,
            "last_load_error": self.holder.last_error,
            "plan_errors": self.reloader.plan_errors,
            "last_plan_error": self.reloader.last_plan_error,
            "events": self.emitter.stats(),
            "batches": {k: {"batches": b.batches, "items": b.items, "by_worker": b.by_worker} for k, b in self.batchers.items()},
            "uptime_s": round(time.time() - self.started, 1),
        }


def create_app(settings: Settings, *, loader: Loader = load_version, emit_events: bool | None = None,
               reload_interval_s: float | None = None) -> Front:
    """The API app: ``serving.front`` before FastAPI. ``loader`` and ``emit_events`` exist for tests and benchmarks."""
    emit = settings.serve_emit_events if emit_events is None else emit_events
    box: dict[str, Any] = {}
    counters: dict[str, Counter[str]] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        rt = Runtime(settings, loader, emit, reload_interval_s)
        await asyncio.to_thread(rt.reloader.start)  # first plan + models loaded before the first request
        if any(a.kind == "teacher" for a in rt.reloader.plan.live_arms):
            await rt.get_teacher()
        tune_interpreter()
        box["rt"], counters["runtime"] = rt, rt.counters
        try:
            yield
        finally:
            rt.reloader.stop()
            for batcher in rt.batchers.values():
                await batcher.close()
            await asyncio.to_thread(rt.emitter.close)
            box.pop("rt", None)

    app = FastAPI(title="toneflow", version="1", lifespan=lifespan,
                  description="Look requests in, colour-tool edits out (teacher or distilled student, A/B).")

    @app.exception_handler(Exception)
    async def _crash(_request: Any, err: Exception) -> JSONResponse:
        log.exception("unhandled error in a request")
        return JSONResponse({"error": "internal", "detail": f"{type(err).__name__}: the server logged it; retry"},
                            status_code=500)

    @app.get("/healthz", responses={503: {"description": "not serving: starting or stopping"}})
    async def healthz() -> JSONResponse:
        """200 while serving: ``status`` is ``ok``, or ``degraded`` with ``reasons`` (the policy: docs/serving.md)."""
        rt: Runtime | None = box.get("rt")
        if rt is None:
            return JSONResponse({"status": "starting", "reasons": [
                {"kind": "starting", "detail": "loading the plan and models, or shutting down"}]}, status_code=503)
        return JSONResponse(rt.health())

    _document_edit(app)
    token = settings.serve_token.get_secret_value() if settings.serve_token else None

    def handler() -> Any:
        rt: Runtime | None = box.get("rt")
        return rt.serve_edit if rt is not None else None

    return Front(app, handler, token, lambda: counters.get("runtime"))


def _document_edit(app: FastAPI) -> None:
    """Put ``POST /v1/edit`` (answered by ``serving.front``, not by a FastAPI route) into ``/openapi.json``."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (EditRequest, EditResponse):
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            error = {"description": "", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}}}}}
            schema.setdefault("paths", {})[EDIT_PATH] = {"post": {
                "summary": "Edit for a look request", "operationId": "edit_v1_edit_post",
                "description": "Bearer token when TONEFLOW_SERVE_TOKEN is set. The user id decides the A/B arm.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EditRequest"}}}},
                "responses": {
                    "200": {"description": "the edit", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/EditResponse"}}}},
                    **{str(code): {**error, "description": why} for code, why in (
                        (400, "body is not a JSON object"), (401, "bad or missing token"),
                        (413, "prompt or body too long"), (422, "invalid fields"),
                        (503, "the teacher could not answer; retry"))}}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""The HTTP API: ``POST /v1/edit`` and ``GET /healthz`` (OpenAPI docs at ``/docs``).

``create_app(settings)`` builds a FastAPI app whose lifespan starts (1) the reloader (traffic plan +
registry polling, see ``serving.models``), (2) the event emitter (``serving.events``), and stops
both on shutdown, flushing queued events.

Per request: authenticate (bearer token when ``TONEFLOW_SERVE_TOKEN`` is set) → validate →
assign the user to an arm (``serving.ab``) → answer with the arm's student (micro-batched, off the
event loop) or the teacher → queue the prompt event (``served_by`` + ``served_edit``) → respond.
Guarantees: every bad input gets a 4xx with a message that says what to fix (400 bad JSON or not
an object, 401 auth, 413 too large, 422 invalid fields); Kafka being down never fails a request; an unexpected
error is a logged 500, never a crash; a student arm whose model cannot be loaded is answered by the
teacher and tagged ``<variant>-fallback`` so it cannot pollute the arm's A/B numbers.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from foundation.settings import Settings
from schemas.edit import Edit
from schemas.events import MAX_ID_CHARS, MAX_PROMPT_CHARS, PromptEvent, ServedBy
from schemas.trust import sign_served, signing_key
from serving.ab import Arm
from serving.batching import Batcher
from serving.events import EventEmitter
from serving.exceptions import NoStudentLoaded
from serving.models import Loader, ModelHolder, Reloader, load_version

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # a valid request is < 1 KB (500-char prompt + two ids); anything bigger is not a look


class EditRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, examples=["golden hour"],
                        description=f"the look request, 1..{MAX_PROMPT_CHARS} characters")
    project_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, examples=["p-123"])
    user_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, examples=["u-42"],
                         description="decides the A/B arm (same user, same arm)")

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            msg = "prompt is blank; send the look in words, e.g. 'golden hour'"
            raise ValueError(msg)
        return value


class EditResponse(BaseModel):
    edit: dict[str, Any] = Field(description="canonical edit JSON (the contract in schemas/edit.py); {} = no tool applies")
    served_by: ServedBy
    event_id: str = Field(description="id of the prompt event sent to toneflow.prompts; use it in exports")
    latency_ms: float


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
                batcher = self.batchers[name] = Batcher(self.holder, name, self.settings.serve_max_batch)
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
            raise HTTPException(503, f"the teacher could not answer ({label.error_kind}: {label.error}); retry shortly",
                                headers={"Retry-After": "1"})
        return label.edit, ServedBy(kind="teacher", model=label.teacher.model, version=label.teacher.version,
                                    variant=variant)

    def health(self) -> dict[str, Any]:
        plan = self.reloader.plan
        missing = sorted(plan.student_models() - set(self.holder.versions()))
        return {
            "status": "degraded" if missing else "ok",
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
            "batches": {k: {"batches": b.batches, "items": b.items} for k, b in self.batchers.items()},
            "uptime_s": round(time.time() - self.started, 1),
        }


class _Guard:
    """Pure ASGI middleware: reject oversized bodies early (413) and count responses by status.

    The limit holds for any transfer encoding: a declared Content-Length over it is refused before
    any byte is read; a body without one (chunked) is read here, at most ``MAX_BODY_BYTES`` + one
    chunk, and refused as soon as it passes the limit, then handed to the app from memory. A 413
    closes the connection, so the server stops reading the rest of the upload.
    """

    def __init__(self, app: Any, counters: dict[str, Counter[str]]) -> None:
        self.app, self.counters = app, counters

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await self._too_large(scope, receive, send, f"request body is {int(length)} bytes")
            return
        if length is None:
            body = await _read_bounded(receive)
            if body is None:
                await self._too_large(scope, receive, send, f"chunked request body passed {MAX_BODY_BYTES} bytes")
                return
            receive = _replay(body, receive)

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self._count(message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _too_large(self, scope: Any, receive: Any, send: Any, what: str) -> None:
        response = JSONResponse({"error": "body_too_large", "detail": (
            f"{what}; the limit is {MAX_BODY_BYTES} (a prompt is at most {MAX_PROMPT_CHARS} characters)")},
            status_code=413, headers={"Connection": "close"})
        self._count(413)
        await response(scope, receive, send)

    def _count(self, status: int) -> None:
        target = self.counters.get("runtime")
        if target is not None:
            target[f"http_{status}"] += 1


async def _read_bounded(receive: Any) -> bytes | None:
    """The whole request body, or None as soon as it passes ``MAX_BODY_BYTES`` (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            return b"".join(parts)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that yields ``body`` once, then defers to the server's (disconnect notices)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _validation_response(err: RequestValidationError) -> JSONResponse:
    errors = err.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        ctx = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {})
        return JSONResponse({"error": "bad_json", "detail": (
            f"request body is not valid JSON ({ctx.get('error', 'parse error')}); "
            'send {"prompt": "...", "project_id": "...", "user_id": "..."}')}, status_code=400)
    if any(e.get("type") == "string_too_long" and tuple(e.get("loc", ()))[-1:] == ("prompt",) for e in errors):
        return JSONResponse({"error": "prompt_too_long", "detail": (
            f"prompt is longer than {MAX_PROMPT_CHARS} characters; describe the look in a few words")},
            status_code=413)
    if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        return JSONResponse({"error": "bad_body", "detail": (
            "request body must be a JSON object sent with 'Content-Type: application/json': "
            '{"prompt": "...", "project_id": "...", "user_id": "..."}')}, status_code=400)
    problems = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                 "problem": str(e.get("msg", "invalid")).removeprefix("Value error, ")} for e in errors]
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    return JSONResponse({"error": "invalid_request", "detail": summary, "problems": problems}, status_code=422)


def create_app(settings: Settings, *, loader: Loader = load_version, emit_events: bool | None = None,
               reload_interval_s: float | None = None) -> FastAPI:
    """The API app. ``loader`` and ``emit_events`` exist for tests and benchmarks."""
    emit = settings.serve_emit_events if emit_events is None else emit_events
    box: dict[str, Any] = {}
    counters: dict[str, Counter[str]] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        rt = Runtime(settings, loader, emit, reload_interval_s)
        await asyncio.to_thread(rt.reloader.start)  # first plan + models loaded before the first request
        if any(a.kind == "teacher" for a in rt.reloader.plan.live_arms):
            await rt.get_teacher()
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
    app.add_middleware(_Guard, counters=counters)
    token = settings.serve_token.get_secret_value() if settings.serve_token else None

    async def authorise(request: Request) -> None:  # async: FastAPI runs a sync dependency in its threadpool
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token: send 'Authorization: Bearer <TONEFLOW_SERVE_TOKEN>'",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        return _validation_response(err)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, err: HTTPException) -> JSONResponse:
        kind = {401: "unauthorized", 503: "unavailable"}.get(err.status_code, "error")
        return JSONResponse({"error": kind, "detail": err.detail}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error in a request")
        return JSONResponse({"error": "internal", "detail": f"{type(err).__name__}: the server logged it; retry"},
                            status_code=500)

    @app.post("/v1/edit", response_model=EditResponse, dependencies=[Depends(authorise)],
              responses={400: {"description": "body is not JSON"}, 401: {"description": "bad or missing token"},
                         413: {"description": "prompt or body too long"}, 422: {"description": "invalid fields"}})
    async def edit(req: EditRequest) -> dict[str, Any]:
        rt: Runtime = box["rt"]
        started = time.perf_counter()
        arm = rt.reloader.plan.assign(req.user_id)
        result, served = await rt.answer(req.prompt, arm)
        event_id = uuid.uuid4().hex
        rt.emitter.emit(PromptEvent(event_id=event_id, project_id=req.project_id, user_id=req.user_id,
                                    ts=datetime.now(UTC), prompt=req.prompt, served_by=served,
                                    served_edit=result,  # signed: the labeler reuses only vouched teacher edits
                                    served_sig=sign_served(signing_key(settings), req.prompt, served, result)))
        rt.by_variant[served.variant] += 1
        rt.served_versions[f"{served.model}@{served.version}"] += 1
        return {"edit": result.canonical_dict(), "served_by": served.model_dump(), "event_id": event_id,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3)}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        rt: Runtime | None = box.get("rt")
        return rt.health() if rt is not None else {"status": "starting"}

    return app

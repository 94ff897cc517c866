"""The ASGI front every request passes first: status counts, auth before the body, the body limit,
and ``POST /v1/edit`` itself.

Why ``/v1/edit`` is answered here and not by a FastAPI route: on the 2-core box FastAPI's
per-request machinery (routing, dependency solving, body parsing, response-model validation and
encoding) cost more CPU than everything else on the event loop together, and the event loop is the
one thread that cannot run in parallel (``benchmarks/bench_serving.py http``, ``docs/benchmarks.md``).
The contract is the same: the body is ``EditRequest`` (validated by pydantic, straight from the
bytes), the answer ``EditResponse``, both documented in ``/openapi.json`` (``serving.app``); every
other path (``/healthz``, ``/docs``) goes on to FastAPI.

Order of checks for ``/v1/edit``, each before any byte of the body is read unless it says so:
1. the bearer token (when ``TONEFLOW_SERVE_TOKEN`` is set): 401;
2. a declared Content-Length over ``MAX_BODY_BYTES``: 413;
3. the body is read (any transfer encoding) and refused with 413 as soon as it passes the limit;
4. JSON and fields: 400 / 413 (prompt too long) / 422.
A refusal before the whole body was read closes the connection, so the server never reads the rest
of an upload. Other paths get the same body limit and are handed the body from memory.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_core import to_json

from schemas.events import MAX_ID_CHARS, MAX_PROMPT_CHARS, ServedBy

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # a valid request is < 1 KB (500-char prompt + two ids); anything bigger is not a look
EDIT_PATH = "/v1/edit"
REQUEST_SHAPE = '{"prompt": "...", "project_id": "...", "user_id": "..."}'


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


class Refusal(Exception):  # noqa: N818 - an answer, not a failure
    """An HTTP error answer raised by the edit handler: status, JSON body and extra headers."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.headers = status, headers or {}
        self.body = {"error": error, "detail": detail, **extra}


EditHandler = Callable[[EditRequest], Awaitable[dict[str, Any]]]


def validation_refusal(errors: list[Any]) -> Refusal:
    """pydantic's errors for a request body → the answer that says what to fix."""
    located = [{**e, "loc": tuple(p for p in e.get("loc", ()) if p != "body")} for e in errors]
    bad_json = next((e for e in located if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        why = (bad_json.get("ctx") or {}).get("error", "parse error")
        return Refusal(400, "bad_json", f"request body is not valid JSON ({why}); send {REQUEST_SHAPE}")
    if any(e.get("type") == "string_too_long" and e["loc"][-1:] == ("prompt",) for e in located):
        return Refusal(413, "prompt_too_long",
                       f"prompt is longer than {MAX_PROMPT_CHARS} characters; describe the look in a few words")
    if any(e["loc"] == () for e in located):
        return Refusal(400, "bad_body", "request body must be a JSON object sent with "
                                        f"'Content-Type: application/json': {REQUEST_SHAPE}")
    problems = [{"field": ".".join(str(p) for p in e["loc"]) or "body",
                 "problem": str(e.get("msg", "invalid")).removeprefix("Value error, ")} for e in located]
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    return Refusal(422, "invalid_request", summary, problems=problems)


def _is_json(content_type: bytes | None) -> bool:
    """FastAPI's rule, kept: no Content-Type, ``application/json`` or ``application/*+json``."""
    if not content_type:
        return True
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


class Front:
    """Pure ASGI app in front of FastAPI (see the module docstring)."""

    def __init__(self, app: Any, handler: Callable[[], EditHandler | None], token: str | None,
                 counters: Callable[[], Counter[str] | None]) -> None:
        self.app, self._handler, self._counters = app, handler, counters
        self._token = token.encode() if token is not None else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if scope["path"] == EDIT_PATH:
            if scope["method"] == "POST":
                await self._edit(headers, receive, send)
            else:
                await self._refuse(send, Refusal(405, "method_not_allowed", f"use POST {EDIT_PATH}", {"Allow": "POST"}),
                                   close=False)
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await self._refuse(send, _too_large(f"request body is {int(length)} bytes"), close=True)
            return
        if length is None and scope["method"] not in ("GET", "HEAD"):
            try:
                body = await read_bounded(receive)
            except ClientGone:
                return
            if body is None:
                await self._refuse(send, _too_large(f"chunked request body passed {MAX_BODY_BYTES} bytes"), close=True)
                return
            receive = _replay(body, receive)

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self._count(message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _edit(self, headers: dict[bytes, bytes], receive: Any, send: Any) -> None:
        if self._token is not None and not self._authorised(headers.get(b"authorization", b"")):
            await self._refuse(send, Refusal(
                401, "unauthorized", "missing or wrong bearer token: send 'Authorization: Bearer <TONEFLOW_SERVE_TOKEN>'",
                {"WWW-Authenticate": "Bearer"}), close=True)
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await self._refuse(send, _too_large(f"request body is {int(length)} bytes"), close=True)
            return
        try:
            body = await read_bounded(receive)
        except ClientGone:
            return  # nobody to answer: do not run the model for it
        if body is None:
            await self._refuse(send, _too_large(f"request body passed {MAX_BODY_BYTES} bytes"), close=True)
            return
        handler = self._handler()
        try:
            if handler is None:
                raise Refusal(503, "unavailable", "the server is starting or stopping; retry shortly", {"Retry-After": "1"})
            if not _is_json(headers.get(b"content-type")):
                raise validation_refusal([{"type": "model_type", "loc": ()}])
            try:
                request = EditRequest.model_validate_json(body)
            except ValidationError as err:
                raise validation_refusal(err.errors(include_url=False)) from None
            answer = await handler(request)
        except Refusal as refusal:
            await self._refuse(send, refusal, close=False)
            return
        except Exception as err:  # noqa: BLE001 - an unexpected error is a logged 500, never a crash
            log.exception("unhandled error in a request")
            await self._refuse(send, Refusal(500, "internal", f"{type(err).__name__}: the server logged it; retry"),
                               close=False)
            return
        await self._respond(send, 200, to_json(answer), {})  # pydantic-core's encoder: ~5x json.dumps

    def _authorised(self, header: bytes) -> bool:
        scheme, _, given = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token or b"")

    async def _refuse(self, send: Any, refusal: Refusal, *, close: bool) -> None:
        headers = {**refusal.headers, **({"Connection": "close"} if close else {})}
        await self._respond(send, refusal.status, json.dumps(refusal.body).encode(), headers)

    async def _respond(self, send: Any, status: int, body: bytes, headers: dict[str, str]) -> None:
        self._count(status)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *((k.lower().encode(), v.encode()) for k, v in headers.items())]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    def _count(self, status: int) -> None:
        counters = self._counters()
        if counters is not None:
            counters[f"http_{status}"] += 1


def _too_large(what: str) -> Refusal:
    return Refusal(413, "body_too_large",
                   f"{what}; the limit is {MAX_BODY_BYTES} (a prompt is at most {MAX_PROMPT_CHARS} characters)")


class ClientGone(Exception):  # noqa: N818 - an event, not a failure
    """The client disconnected before its request body was complete."""


async def read_bounded(receive: Any) -> bytes | None:
    """The whole request body, or None as soon as it passes ``MAX_BODY_BYTES`` (the rest is never read).

    Raises ClientGone when the client disconnects first.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
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

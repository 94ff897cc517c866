"""The console's HTTP app: three pages, the review endpoints, promote/rollback, login.

Auth as in ``toneflow serve`` (serving/app.py): when ``TONEFLOW_SERVE_TOKEN`` is set every route
but ``/healthz`` needs it, as ``Authorization: Bearer <token>`` or, for a browser, the cookie that
``/login`` sets (HttpOnly, SameSite=Strict, so another site cannot post forms with it; POSTs from
another origin are refused as well). Page handlers are plain functions, run in the threadpool:
DuckDB, the student and the renderer never block the event loop.
"""

from __future__ import annotations

import hmac
import json
import logging
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from console import loop_page, models_page, review_page
from console.html import e, page, section
from console.review_queue import ReviewQueue, teacher_side
from console.store import Store
from foundation.errors import ToneflowError
from foundation.settings import Settings

log = logging.getLogger(__name__)

TOKEN_COOKIE = "toneflow_console_token"
REVIEWER_COOKIE = "toneflow_reviewer"


class _LoginNeeded(Exception):
    pass


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _back(path: str, message: str = "", error: bool = False) -> RedirectResponse:
    """303 to ``path``, with a message the page shows (``msg``; ``err=1`` shows it as an error)."""
    if message:
        path += ("&" if "?" in path else "?") + "msg=" + quote(message) + ("&err=1" if error else "")
    return RedirectResponse(path, status_code=303)


def create_app(settings: Settings, *, queue: ReviewQueue | None = None) -> FastAPI:
    """The console app for ``settings``; ``queue`` lets tests share one (models loaded once)."""
    token = settings.serve_token.get_secret_value() if settings.serve_token else None
    reviews = queue or ReviewQueue(settings)
    store = Store(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        await run_in_threadpool(lambda: store.cursor().close())  # views bound before the first page
        yield
        store.close()
        if queue is None:
            reviews.close()

    app = FastAPI(title="toneflow console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def authorise(request: Request) -> None:
        if request.method == "POST":
            origin = request.headers.get("origin")
            # A browser names the page a form came from; without a token only this check stops another
            # site (or a sandboxed frame: "null") from posting to the loopback console.
            if origin and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
                raise HTTPException(403, "cross-origin form posts are refused; use the console's own pages")
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        candidates = [given.strip()] if scheme.lower() == "bearer" else []
        candidates.append(request.cookies.get(TOKEN_COOKIE, ""))
        if not any(c and hmac.compare_digest(c.encode(), token.encode()) for c in candidates):
            raise _LoginNeeded

    auth = [Depends(authorise)]

    @app.exception_handler(_LoginNeeded)
    async def _login_needed(request: Request, _err: _LoginNeeded) -> Response:
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"error": "unauthorized", "detail": (
                "missing or wrong token: send 'Authorization: Bearer <TONEFLOW_SERVE_TOKEN>'")}, status_code=401,
                headers={"WWW-Authenticate": "Bearer"})
        return HTMLResponse(_login_page(), status_code=401)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, err: HTTPException) -> Response:
        return HTMLResponse(page("error", "", section("error", f"<p>{e(err.detail)}</p>")), status_code=err.status_code)

    def _page(active: str, title: str, render: Any, request: Request) -> HTMLResponse:
        con = store.cursor()
        try:
            body = render(con)
        finally:
            con.close()
        params = request.query_params
        return HTMLResponse(page(title, active, body, params.get("msg", ""), params.get("err") == "1",
                                 script=review_page.KEYS_JS if active == "Review" else ""))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login", response_class=HTMLResponse)
    def login_form() -> str:
        return _login_page()

    @app.post("/login")
    async def login(request: Request) -> Response:
        given = _form(await request.body()).get("token", "")
        if token is not None and not hmac.compare_digest(given.encode(), token.encode()):
            return HTMLResponse(_login_page("wrong token"), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
        return response

    @app.get("/", response_class=HTMLResponse, dependencies=auth)
    def loop(request: Request) -> HTMLResponse:
        return _page("Loop", "Loop", lambda con: loop_page.render(settings, con), request)

    @app.get("/models", response_class=HTMLResponse, dependencies=auth)
    def models(request: Request) -> HTMLResponse:
        return _page("Models", "Models", lambda con: models_page.render(settings, con), request)

    @app.post("/models/promote", dependencies=auth)
    async def promote(request: Request) -> Response:
        from trainer.actions import promote_model

        form = _form(await request.body())
        try:
            out = await run_in_threadpool(promote_model, settings, form.get("version", ""), force="force" in form)
        except ToneflowError as err:
            return _back("/models", str(err), error=True)
        text = f"{out['version']} is now current" if out["promoted"] else f"{out['version']}: {out.get('reason')}"
        return _back("/models", text)

    @app.post("/models/rollback", dependencies=auth)
    async def rollback(request: Request) -> Response:
        from trainer.actions import rollback_model

        try:
            out = await run_in_threadpool(rollback_model, settings, _form(await request.body()).get("to") or None)
        except ToneflowError as err:
            return _back("/models", str(err), error=True)
        return _back("/models", f"rolled back: current is {out['version']} (was {out['previous']})")

    def _version(asked: str | None) -> str | None:
        from trainer.registry import resolve, version_names

        if asked:
            return resolve(settings, asked)
        names = version_names(settings)
        return names[-1] if names else None  # the newest: the candidate a promotion would judge

    def _rated(con: Any, version: str, reviewer: str) -> set[str]:
        rows = con.execute("SELECT DISTINCT item_id FROM reviews WHERE version = ? AND reviewer = ?",
                           [version, reviewer]).fetchall()
        return {str(r[0]) for r in rows}

    @app.get("/review", response_class=HTMLResponse, dependencies=auth)
    def review(request: Request, model: str | None = None) -> HTMLResponse:
        from trainer.registry import version_names

        try:
            version = _version(model)
        except ToneflowError as err:
            return HTMLResponse(page("Review", "Review", section("Review", f"<p>{e(err)}</p>")), status_code=404)
        reviewer = request.cookies.get(REVIEWER_COOKIE, "")

        def render(con: Any) -> str:
            if version is None:
                return section("Review", "<p>No models yet: run <code>toneflow train</code>.</p>")
            nav = review_page.versions_nav(version_names(settings), version)
            if not reviewer:
                return nav + review_page.who_form(version)
            done = _rated(con, version, reviewer)
            try:
                items = reviews.items(version)
            except ToneflowError as err:  # e.g. the teacher is unreachable: say so instead of a 500
                return nav + section("Review", f"<p>the review queue of {e(version)} cannot be built: {e(err)}</p>")
            item = reviews.next_item(version, reviewer, done)
            return nav + review_page.render(version, reviewer, item, len(done & {i.item_id for i in items}),
                                            len(items))

        return _page("Review", "Review", render, request)

    @app.post("/review/reviewer", dependencies=auth)
    async def set_reviewer(request: Request) -> Response:
        form = _form(await request.body())
        name = form.get("reviewer", "").strip()[:64]
        response = _back(f"/review?model={quote(form.get('version', ''))}", "" if name else "enter a reviewer id",
                         error=not name)
        if name:
            response.set_cookie(REVIEWER_COOKIE, name, samesite="strict")
        return response

    @app.post("/review", dependencies=auth)
    async def rate(request: Request) -> Response:
        from warehouse.reviews import review_row, write_review

        form = _form(await request.body())
        reviewer = request.cookies.get(REVIEWER_COOKIE, "")
        version = form.get("version", "")
        back = f"/review?model={quote(version)}"
        item = await run_in_threadpool(reviews.find, version, form.get("item_id", ""))
        if item is None or not reviewer:
            return _back(back, "that item is not in this queue (or no reviewer id); rate the one shown", error=True)
        try:
            left, right, same = review_page.parse_answer(form)
        except ValueError as err:
            return _back(back, str(err), error=True)
        side = teacher_side(version, item.item_id, reviewer)
        teacher_ok, student_ok = (left, right) if side == "left" else (right, left)
        row = review_row(reviewer=reviewer, version=version, item_id=item.item_id, prompt=item.prompt,
                         student_relevant=student_ok, teacher_relevant=teacher_ok, mimics=same,
                         photo=item.photo, teacher_side=side, student_model=item.student_model,
                         teacher_model=item.teacher_model, teacher_version=item.teacher_version,
                         student_edit=json.dumps(item.student_edit.canonical_dict(), sort_keys=True),
                         teacher_edit=json.dumps(item.teacher_edit.canonical_dict(), sort_keys=True))
        await run_in_threadpool(write_review, settings, row)
        return _back(back)

    @app.post("/review/skip", dependencies=auth)
    async def skip(request: Request) -> Response:
        form = _form(await request.body())
        version = form.get("version", "")
        reviews.skip(version, request.cookies.get(REVIEWER_COOKIE, ""), form.get("item_id", ""))
        return _back(f"/review?model={quote(version)}")

    @app.get("/review/image/{version}/{item}/{slot}.png", dependencies=auth)
    def image(version: str, item: str, slot: str, request: Request) -> Response:
        if slot not in ("original", "left", "right"):
            raise HTTPException(404, "images are original.png, left.png or right.png")
        found = reviews.find(version, item)
        if found is None:
            raise HTTPException(404, f"no item {item} in the review queue of {version}")
        png = reviews.image(version, found, slot, request.cookies.get(REVIEWER_COOKIE, ""))
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})

    return app


def _login_page(error: str = "") -> str:
    note = f"<p class='msg err'>{e(error)}</p>" if error else ""
    return page("login", "", section("Sign in", note + (
        "<form method='post' action='/login'><label>token (TONEFLOW_SERVE_TOKEN) "
        "<input type='password' name='token' id='token' autofocus></label> <button>sign in</button></form>")))

"""The console (`toneflow ui`) on a demo-sized toneflow: pages, speed, review, gates, auth, a real browser.

The browser test drives Debian's chromium through Playwright and skips where either is missing.
Set CONSOLE_SCREENSHOTS=1 to save the three pages as docs/console_*.png (the README shows them).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from console.app import REVIEWER_COOKIE, create_app
from console.review_queue import ReviewQueue, teacher_side
from foundation.settings import Settings
from tests.console_harness import fill_warehouse, train_two_students
from trainer import registry
from warehouse.catalog import connect
from warehouse.reviews import fleiss_kappa, review_row, review_stats, write_review

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))  # Debian's; Playwright cannot download one
BUDGET_MS = 300.0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, ReviewQueue, dict[str, int]]]:
    from serving.rollout import start_candidate, step

    work = tmp_path_factory.mktemp("console")
    # Margins this wide let either student through every offline-gate criterion, so the buttons
    # can be exercised.
    settings = Settings(data_dir=work / "data", test_fraction=0.25, val_fraction=0.2, review_sample=12,
                        promote_margin=1.0, promote_delta_e_margin=100.0, promote_request_margin=1.0)
    written = fill_warehouse(settings, projects=3000)
    train_two_students(settings, work)
    registry.rollback(settings)  # v000001 current again, so v000002 is a candidate to promote
    start_candidate(settings, "v000002", share=0.3)
    step(settings, apply=False)  # one recorded online-gate decision (keep_collecting: too few projects)
    queue = ReviewQueue(settings)
    yield settings, queue, written
    queue.close()


@pytest.fixture
def client(env: tuple[Settings, ReviewQueue, dict[str, int]]) -> Iterator[TestClient]:
    settings, queue, _ = env
    with TestClient(create_app(settings, queue=queue), headers={"accept": "text/html"}) as c:
        yield c


# --- agreement -------------------------------------------------------------------------------
def test_fleiss_kappa_on_fleiss_1971_example_and_edges() -> None:
    # The worked example of Fleiss (1971) as usually reproduced: 10 items, 14 raters, 5 categories.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=0.001)
    assert fleiss_kappa([[2, 0], [0, 2], [2, 0]]) == pytest.approx(1.0)  # raters always agree
    assert fleiss_kappa([[1, 1], [1, 1]]) < 0  # always split: worse than chance
    assert fleiss_kappa([[1, 0], [0, 1]]) is None  # nobody shares an item


def test_review_stats_keep_each_reviewers_latest_answer(settings: Settings) -> None:
    for reviewer, mimics in (("ann", True), ("bob", True), ("ann", False)):  # ann changes her mind
        write_review(settings, review_row(reviewer=reviewer, version="v000009", item_id="i1", prompt="noir",
                                          student_relevant=True, teacher_relevant=True, mimics=mimics))
        time.sleep(0.01)
    write_review(settings, review_row(reviewer="bob", version="v000009", item_id="i2", prompt="warm",
                                      student_relevant=False, teacher_relevant=True, mimics=True))
    st = review_stats(connect(settings))["v000009"]
    assert (st.ratings, st.items, st.reviewers, st.shared_items) == (3, 2, 2, 1)
    assert st.mimicry == pytest.approx(2 / 3) and st.student_relevance == pytest.approx(2 / 3)
    assert st.kappa_mimicry == pytest.approx(fleiss_kappa([[1, 1]]))  # only i1 has two raters: they disagree


# --- pages -----------------------------------------------------------------------------------
def test_pages_render_on_a_fresh_machine(settings: Settings) -> None:
    with TestClient(create_app(settings), headers={"accept": "text/html"}) as c:
        loop, models, review = (c.get(p) for p in ("/", "/models", "/review"))
    assert (loop.status_code, models.status_code, review.status_code) == (200, 200, 200)
    assert "no data yet" in loop.text and "nothing yet" in models.text and "No models yet" in review.text


def _timed(client: TestClient, path: str, n: int = 5) -> tuple[float, str]:
    t0 = time.perf_counter()
    client.get(path)  # warm: the review queue is built (student + teacher) on its first visit
    print(f"\nfirst GET {path}: {(time.perf_counter() - t0) * 1000:.0f} ms", end="")
    times, text = [], ""
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text[:500]
        text = r.text
    return statistics.median(times), text


def test_pages_show_the_warehouse_and_render_under_budget(env, client: TestClient) -> None:
    settings, _, written = env
    client.cookies.set(REVIEWER_COOKIE, "timer")
    con = connect(settings)
    loop_ms, loop = _timed(client, "/")
    for table, n in written.items():
        assert f"<td>{table}</td><td class='n'>{n:,}</td>" in loop  # every table's row count, as written
    slices = con.execute("SELECT look_slice, count(*) FROM accepted_examples GROUP BY 1").fetchall()
    for look_slice, n in slices:
        assert f">{look_slice}</text>" in loop and f">{n:,}</text>" in loop
    pending = con.execute("SELECT count(*) FROM accepted_examples").fetchone()[0]
    assert f"<b>{pending:,}</b> new accepted examples" in loop  # trigger never fired: all are pending

    models_ms, models = _timed(client, "/models")
    evals = con.execute("SELECT * FROM model_evals WHERE subset = 'All'")
    columns = [d[0] for d in evals.description]
    for row in evals.fetchall():
        rec = dict(zip(columns, row))
        assert f"{rec['overall']:.3f}" in models
    assert "v000001</b> ★" in models and "v000002" in models
    assert "keep_collecting" in models and "student-v000002" in models  # the online gate's log and the A/B arm

    review_ms, review = _timed(client, "/review")
    assert "Is the left result relevant" in review and "/left.png" in review
    print(f"\nconsole page render (median of 5, warm): loop {loop_ms:.0f} ms, models {models_ms:.0f} ms, "
          f"review {review_ms:.0f} ms ({sum(written.values()):,} stream rows)")
    assert max(loop_ms, models_ms, review_ms) < BUDGET_MS


def test_review_images_are_the_teacher_and_student_renders(env, client: TestClient) -> None:
    import io

    import numpy as np
    from PIL import Image

    from editor.render import Renderer, RenderOptions

    settings, queue, _ = env
    [version] = [v for v in registry.version_names(settings) if v == "v000002"]
    item = queue.items(version)[0]
    client.cookies.set(REVIEWER_COOKIE, "pixel")
    side = teacher_side(version, item.item_id, "pixel")
    left = np.asarray(Image.open(io.BytesIO(client.get(f"/review/image/{version}/{item.item_id}/left.png").content)))
    original = np.asarray(Image.open(io.BytesIO(client.get(
        f"/review/image/{version}/{item.item_id}/original.png").content)))
    expected = Renderer(item.teacher_edit if side == "left" else item.student_edit,
                        RenderOptions.from_settings(settings))(original)
    assert np.array_equal(left, expected)


def test_a_rating_lands_in_reviews_with_sides_unblinded(env, client: TestClient) -> None:
    settings, queue, _ = env
    version = "v000001"
    client.cookies.set(REVIEWER_COOKIE, "carol")
    item = queue.next_item(version, "carol", set())
    r = client.post("/review", data={"version": version, "item_id": item.item_id, "left_relevant": "yes",
                                     "right_relevant": "no", "same": "no"}, follow_redirects=False)
    assert r.status_code == 303 and "err" not in r.headers["location"]
    row = connect(settings).execute("SELECT teacher_side, teacher_relevant, student_relevant, mimics, prompt "
                                    "FROM reviews WHERE reviewer = 'carol'").fetchone()
    side = teacher_side(version, item.item_id, "carol")
    assert row == (side, side == "left", side == "right", False, item.prompt)
    assert queue.next_item(version, "carol", {item.item_id}) != item
    missing = client.post("/review", data={"version": version, "item_id": item.item_id, "same": "yes"},
                          follow_redirects=False)
    assert "err=1" in missing.headers["location"] and "answer+every+question" in missing.headers["location"].replace(
        "%20", "+")


def test_promotion_waits_for_reviews_and_mimicry(env) -> None:
    from trainer.actions import promote_model
    from trainer.exceptions import GateRejected
    from trainer.review_gate import ReviewsRequired

    assert issubclass(ReviewsRequired, GateRejected)  # so trainer/train.py keeps a held candidate registered
    settings, _, _ = env
    strict = settings.model_copy(update={"promote_min_reviews": 2, "promote_min_mimicry": 0.75})
    with pytest.raises(ReviewsRequired, match="0 of its items reviewed"):
        promote_model(strict, "v000002")
    for i, mimics in enumerate((True, False)):
        write_review(settings, review_row(reviewer="dave", version="v000002", item_id=f"g{i}", prompt="p",
                                          student_relevant=True, teacher_relevant=True, mimics=mimics))
    with pytest.raises(ReviewsRequired, match="matches the teacher in 50%"):
        promote_model(strict, "v000002")
    cli_env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_path), "PYTHONPATH": str(ROOT),
               "TONEFLOW_PROMOTE_MARGIN": "1", "TONEFLOW_PROMOTE_DELTA_E_MARGIN": "100", "TONEFLOW_PROMOTE_REQUEST_MARGIN": "1",
               "TONEFLOW_PROMOTE_MIN_REVIEWS": "2", "TONEFLOW_PROMOTE_MIN_MIMICRY": "0.75"}
    done = subprocess.run([sys.executable, "-m", "toneflow", "models", "promote", "v000002"], env=cli_env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3 and "TONEFLOW_PROMOTE_MIN_MIMICRY asks for 75%" in done.stderr
    assert registry.resolve(settings) == "v000001"
    lenient = strict.model_copy(update={"promote_min_mimicry": 0.5})
    assert promote_model(lenient, "v000002")["promoted"]
    registry.rollback(settings)


def test_promote_and_rollback_forms_move_the_registry(env, client: TestClient) -> None:
    settings, _, _ = env
    assert registry.resolve(settings) == "v000001"
    r = client.post("/models/promote", data={"version": "v000002"}, follow_redirects=True)
    assert "v000002 is now current" in r.text, r.text[r.text.find("role='status'"):][:300]
    assert registry.resolve(settings) == "v000002"
    r = client.post("/models/rollback", follow_redirects=True)
    assert "current is v000001 (was v000002)" in r.text and registry.resolve(settings) == "v000001"
    for origin in ("http://evil.example", "null"):  # no token: the origin check alone guards the loopback console
        assert client.post("/models/promote", data={"version": "v000002"}, headers={"origin": origin}).status_code == 403
    assert registry.resolve(settings) == "v000001"
    r = client.post("/models/promote", data={"version": "v000099"}, follow_redirects=True)
    assert "no model &#x27;v000099&#x27;" in r.text and registry.resolve(settings) == "v000001"


def test_token_auth_like_serve(env) -> None:
    settings, queue, _ = env
    locked = settings.model_copy(update={"serve_token": SecretStr("s3cret")})
    with TestClient(create_app(locked, queue=queue)) as c:
        assert c.get("/models").status_code == 401
        assert c.get("/models", headers={"accept": "text/html"}).status_code == 401  # the sign-in page
        assert c.get("/models", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/models", headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/login", data={"token": "nope"}).status_code == 401
        c.post("/login", data={"token": "s3cret"})
        assert c.get("/models").status_code == 200  # the cookie
        assert c.post("/models/rollback", headers={"origin": "http://evil.example"}).status_code == 403
        assert c.get("/healthz").status_code == 200


def test_cli_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "toneflow", "ui", "--host", "0.0.0.0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "TONEFLOW_SERVE_TOKEN" in done.stderr


# --- a real browser --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sync_api():  # noqa: ANN201 - playwright.sync_api, or a skip before the module's data is built
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; `make test` does it as root)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")


@pytest.fixture
def live(env) -> Iterator[str]:
    import uvicorn

    from serving.testing import free_port

    settings, queue, _ = env
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, queue=queue), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_browser_opens_every_page_and_reviews_five_items_by_keyboard(sync_api, env, live: str, tmp_path: Path) -> None:
    settings, _, _ = env
    shots = os.environ.get("CONSOLE_SCREENSHOTS") == "1"
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=str(CHROMIUM),
                                                    headless=True, args=args, viewport={"width": 1280, "height": 900})
        try:
            page = ctx.new_page()
            page.goto(live + "/")
            assert page.locator("h2", has_text="Events per topic").is_visible()
            assert page.locator("svg").count() >= 3
            if shots:
                page.screenshot(path=str(ROOT / "docs" / "console_loop.png"), full_page=True)

            page.goto(live + "/models")
            assert page.locator("h2", has_text="Versions").is_visible()
            if shots:
                page.screenshot(path=str(ROOT / "docs" / "console_models.png"), full_page=True)
            page.once("dialog", lambda d: d.dismiss())  # a dismissed confirmation changes nothing
            page.locator("form.promote button").first.click()
            page.wait_for_timeout(300)
            assert registry.resolve(settings) == "v000001"
            page.once("dialog", lambda d: d.accept())
            with page.expect_navigation():
                page.locator("form.promote button").first.click()
            assert "v000002 is now current" in page.locator(".msg").inner_text()
            page.once("dialog", lambda d: d.accept())
            with page.expect_navigation():
                page.locator("form.rollback button").click()
            assert registry.resolve(settings) == "v000001"

            page.goto(live + "/review?model=v000002")
            # The reviewer field takes focus by autofocus; under load that can land after the first
            # keystrokes, so wait for it rather than lose letters of the name.
            page.wait_for_function("document.activeElement && document.activeElement.id === 'reviewer'")
            page.keyboard.type("erin")
            with page.expect_navigation():
                page.keyboard.press("Enter")
            first = page.locator("#prompt").inner_text()
            with page.expect_navigation():
                page.keyboard.press("s")  # skip
            assert page.locator("#prompt").inner_text() != first
            for i in range(5):
                page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
                if shots and i == 0:
                    page.keyboard.press("1")
                    page.keyboard.press("4")
                    page.keyboard.press("y")
                    page.screenshot(path=str(ROOT / "docs" / "console_review.png"), full_page=True)
                for key in ("1", "4", "y"):
                    page.keyboard.press(key)
                with page.expect_navigation():
                    page.keyboard.press("Enter")
                assert page.locator(".msg.err").count() == 0
            assert "5 of" in page.content()
        finally:
            ctx.close()

    env_vars = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "toneflow", "sql", "select * from reviews where reviewer = 'erin'",
                           "--format", "json"], env=env_vars, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 5, (done.stdout, done.stderr)
    assert {r["version"] for r in rows} == {"v000002"}
    assert len({r["item_id"] for r in rows}) == 5 and first not in {r["prompt"] for r in rows}
    assert all(r["mimics"] and r["student_relevant"] == (r["teacher_side"] == "right") for r in rows)

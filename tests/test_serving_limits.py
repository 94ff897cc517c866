"""The body limit and auth against a real server over a raw socket: an unauthenticated request is
refused with 401 before its body is read (Content-Length or chunked); an authenticated 400 MB chunked
upload (no Content-Length) is cut off at the limit with a 413; both close the connection, and server
memory does not grow with the upload; small chunked bodies are still served and authenticated."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

import httpx
import pytest

from foundation.settings import Settings
from serving.app import MAX_BODY_BYTES
from serving.testing import live_server

TOKEN = "limit-token"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory):
    """No student registered: the default plan answers with the offline teacher."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("limits") / "data", serve_token=TOKEN)
    with live_server(settings, emit_events=False) as base:
        yield base


def _head(port: int, token: str | None, length: int | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (f"POST /v1/edit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}"
            f"{framing}\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    raw = b""
    while b"\r\n\r\n" not in raw:
        part = sock.recv(65536)
        if not part:
            break
        raw += part
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return int(lines[0].split()[1]), headers, body


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _huge_chunked_upload(url: str, token: str | None, total: int = 400 << 20) -> tuple[int, dict[str, str], bytes, int]:
    """Send up to ``total`` bytes of chunked body, stopping once the server answers; returns what it said
    and how many body bytes went out before that."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall(_head(port, token) + _chunk(b'{"prompt": "'))
        block = _chunk(b"a" * 65536)
        sent = 0
        deadline = time.monotonic() + 60
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                break
            if writable:
                try:
                    sent += sock.send(block)  # partial sends only shift the framing; the server stops before it matters
                except (BrokenPipeError, ConnectionResetError):
                    break
        status, headers, body = _read_response(sock)
        return status, headers, body, sent
    finally:
        sock.close()


@pytest.mark.parametrize(("token", "want"), [(TOKEN, 413), (None, 401)], ids=["with-token", "no-token"])
def test_a_chunked_upload_past_the_limit_is_refused_without_reading_it(url: str, token: str | None, want: int) -> None:
    rss = _rss_bytes()  # the server runs in this process (a thread): its memory is ours
    status, headers, body, sent = _huge_chunked_upload(url, token)
    grown = _rss_bytes() - rss
    print(f"400 MB chunked upload, {'with a' if token else 'no'} token: {status}, {sent / 2**20:.1f} MiB sent "
          f"before the answer, server memory {grown / 2**20:+.1f} MiB")  # the closing note's figure (-s)
    assert status == want, body
    if want == 413:
        assert json.loads(body)["error"] == "body_too_large" and str(MAX_BODY_BYTES) in json.loads(body)["detail"]
    else:
        assert json.loads(body)["error"] == "unauthorized" and headers.get("www-authenticate") == "Bearer"
    assert headers.get("connection") == "close"
    # The server answered long before the 400 MB were sent: what went out is the limit plus the
    # socket buffers between client and server, and the server kept none of it.
    assert sent < 32 << 20, sent
    assert grown < 50 << 20, grown


@pytest.mark.parametrize(("token", "want"), [(TOKEN, 413), (None, 401)], ids=["with-token", "no-token"])
def test_a_declared_huge_body_is_refused_before_a_byte_of_it_is_sent(url: str, token: str | None, want: int) -> None:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(_head(port, token, length=400 << 20))  # the head only: the server must answer without the body
        status, headers, body = _read_response(sock)
        assert status == want, body
        assert json.loads(body)["error"] == ("body_too_large" if want == 413 else "unauthorized")
        assert headers.get("connection") == "close"
        assert sock.recv(1) == b""  # and it closed the connection: the upload is never read


def test_small_chunked_bodies_are_still_served_and_authenticated(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"prompt": "golden hour", "project_id": "p1", "user_id": "u1"}).encode()
    for token, want in ((TOKEN, 200), (None, 401)):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(_head(port, token) + _chunk(body[:10]) + _chunk(body[10:]) + b"0\r\n\r\n")
            status, _, answer = _read_response(sock)
        assert status == want, answer
        if want == 200:
            assert json.loads(answer)["served_by"]["kind"] == "teacher"
    # a declared Content-Length over the limit is refused before the body is sent at all
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post("/v1/edit", content=b"x" * (MAX_BODY_BYTES + 1), headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 413 and r.headers["connection"] == "close"
        health = client.get("/healthz").json()
        assert health["requests"]["http_413"] >= 3


def test_a_client_that_leaves_mid_body_gets_no_answer_and_the_server_keeps_serving(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    with httpx.Client(base_url=url, timeout=30) as client:
        before = client.get("/healthz").json()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(_head(port, TOKEN) + _chunk(b'{"prompt": "golden'))  # and never the rest
        answered = httpx.post(f"{url}/v1/edit", json={"prompt": "golden hour", "project_id": "p", "user_id": "u"},
                              headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert answered.status_code == 200, answered.text
        after = client.get("/healthz").json()
        # only the complete request was answered (by_variant counts served edits)
        assert sum(after["by_variant"].values()) == sum(before["by_variant"].values()) + 1
        assert after["requests"].get("http_400", 0) == before["requests"].get("http_400", 0)  # not even a bad_json
        assert not any(k.startswith("http_5") for k in after["requests"])

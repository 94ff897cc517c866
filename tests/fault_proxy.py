"""A TCP proxy in front of the embedded broker that can cut the network, for broker-bounce tests.

The embedded broker keeps its log in memory, so a real restart would lose it; what a broker bounce
does to clients (every connection reset, reconnects refused for a while, then accepted again) is
played here instead. Clients only stay behind the proxy if the broker *advertises* the proxy's
address in its metadata: start the broker with ``foundation.broker.start(..., advertised=proxy.address)``.

``cut(seconds)`` resets every open connection (RST, as a dying broker's kernel would) and, for
``seconds``, resets every new one as soon as it is accepted; ``cuts`` records when each began and
ended. Threads only: one acceptor, two pumps per connection.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Cut:
    started: float  # time.monotonic()
    ended: float
    reset: int      # connections open when it began (each is a client behind the proxy)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset', not a polite EOF."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv() (close alone does not)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(128)
        self.host, self.port = self._listener.getsockname()[:2]
        self.upstream: tuple[str, int] | None = None
        self.cuts: list[Cut] = []
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._down_until = 0.0
        self._closed = False
        self.accepted = 0
        self.refused = 0
        threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True).start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def cutting(self) -> bool:
        return self._down()

    def forward_to(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.upstream = (host, int(port))

    def cut(self, seconds: float) -> Cut:
        """Reset every connection and refuse new ones for ``seconds``; blocks until it is over."""
        started = time.monotonic()
        with self._lock:
            self._down_until = started + seconds
            victims, self._open = self._open, set()
        for sock in victims:
            _reset(sock)
        time.sleep(max(0.0, self._down_until - time.monotonic()))
        cut = Cut(started=started, ended=time.monotonic(), reset=len(victims) // 2)
        self.cuts.append(cut)
        return cut

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            victims, self._open = self._open, set()
        for sock in victims:
            _reset(sock)

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down() or self.upstream is None:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._down():  # a cut began while we connected
                    _reset(client)
                    _reset(upstream)
                    continue
                self._open.update((client, upstream))
            self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

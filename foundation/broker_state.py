"""Where the embedded broker is: its pid and address, recorded in ``<data_dir>/broker.json``.

Kept apart from ``broker.py`` (which starts and stops it) so that the Kafka client configuration
(``kafka.py``) can find the broker without importing the code that spawns it.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from foundation.osutil import atomic_write_json, pid_alive
from foundation.settings import Settings

STATE_FILE = "broker.json"


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


def write_state(settings: Settings, state: BrokerState) -> None:
    atomic_write_json(state_path(settings), asdict(state))

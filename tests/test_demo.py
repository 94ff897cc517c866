"""`toneflow demo --quick`, as a new user runs it: the whole loop, a report, nothing left running."""

import os
import subprocess
import sys

import pytest

from foundation.osutil import pid_alive

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def _ours() -> set[int]:
    """Live brokers, workers, servers and training runs on this machine."""
    out = subprocess.run(["pgrep", "-f", "tansu|-m toneflow"], capture_output=True, text=True).stdout.split()
    return {int(p) for p in out if pid_alive(int(p))}


def test_quick_demo_runs_the_loop_and_cleans_up(tmp_path):
    before = _ours()
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(tmp_path / "data")}
    env.pop("TONEFLOW_KAFKA_BOOTSTRAP", None)
    done = subprocess.run([sys.executable, "-m", "toneflow", "demo", "--quick"], env=env, capture_output=True,
                          text=True, timeout=1500)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    root = tmp_path / "data" / "demo"
    report = (root / "report.md").read_text()
    for section in ("## Events through the pipeline", "## Training runs", "## Offline metrics",
                    "## Online A/B", "## Latency", "## Contact sheet"):
        assert section in report
    assert "toneflow v000001" in report and "paper FlanT5-base" in report
    assert "| student | student minilm |" in report and "| teacher | teacher offline |" in report
    assert (root / "contact_sheet.png").stat().st_size > 10_000
    assert "Online gate: " in report and "not run" not in report
    assert "console on http://127.0.0.1:" in done.stdout and "toneflow ui" in done.stdout
    # Nothing it started is still running: no new broker, worker, server or training process.
    assert not (root / "broker" / "broker.json").exists()
    assert _ours() - before == set()

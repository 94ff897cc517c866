"""`toneflow demo --quick`, as a new user runs it: the whole loop, a report, nothing left running."""

import json
import os
import subprocess
import sys

import pytest

from foundation.osutil import pid_alive

# The demo's own subprocess timeout (1500 s) is the bound, not the suite's 300 s default.
pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(1600)]


def _started_under(root: object) -> set[int]:
    """Live brokers, workers, servers and trainers whose command line or environment names ``root``.

    The demo hands its data dir to every process it starts (flags or TONEFLOW_DATA_DIR), so this
    finds exactly what it started, not other toneflow processes on a shared machine.
    """
    out = subprocess.run(["pgrep", "-f", "tansu|-m toneflow"], capture_output=True, text=True).stdout.split()
    mine = set()
    for pid in map(int, out):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue  # gone already
        if str(root).encode() in environ + cmdline and pid_alive(pid):
            mine.add(pid)
    return mine


def test_quick_demo_runs_the_loop_and_cleans_up(tmp_path):
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
    # The trigger the worker fired reached the trainer service, which trained it (and only it).
    assert "## Retrain triggers run by the trainer service" in report
    fired = json.loads((root / "streams" / "trigger.json").read_text())["fired"]
    assert fired and f"| {fired[0]} | done | v000001 |" in report
    assert f"trainer: trigger {fired[0]} received" in report
    assert "console on http://127.0.0.1:" in done.stdout and "toneflow ui" in done.stdout
    # Nothing it started is still running: no new broker, worker, server or training process.
    assert not (root / "broker" / "broker.json").exists()
    assert _started_under(tmp_path) == set()

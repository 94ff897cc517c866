"""Broker bounces through a fault proxy: three 10 s cuts under acceptance-sized traffic (issue 16).

The worker must recover by itself or be seen stalled within 30 s and exit (the harness restarts it,
as compose does); at the end nothing is missing or duplicated in the views and the audit balances.
``python -m tests.bounce_harness`` runs the same scenario and prints the figures.
"""

from __future__ import annotations

import pytest

from tests.bounce_harness import run_bounces

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DETECTION_LIMIT_S = 30.0


@pytest.mark.timeout(420)
def test_three_broker_cuts_lose_nothing_and_every_stall_is_seen(tmp_path):
    report = run_bounces(tmp_path, projects=2000, malformed=500, cuts=3, cut_s=10.0, stall_s=20.0)
    figures = "\n".join(report.lines() + [f"exit {e.code}: {e.status}" for e in report.exits])
    print(figures)
    assert not report.send_error, figures
    assert len(report.cuts) == 3 and all(c.ended - c.started >= 10.0 for c in report.cuts), figures
    # The clients really were behind the proxy (the broker advertises it): every cut broke
    # connections, and reconnects were refused while it lasted.
    assert all(c.reset > 0 for c in report.cuts) and report.refused > 0, figures
    assert report.missing == 0 and report.unexpected == 0 and report.duplicates == 0, figures
    assert report.accepted_rows == report.expected, figures
    assert report.labels == 2000 and report.dlq_malformed == 500, figures
    assert report.audit_missing == 0 and report.audit_ahead == 0, figures
    assert all(e.code != 0 for e in report.exits), figures  # a worker never leaves quietly
    assert all(e.detection_s <= DETECTION_LIMIT_S for e in report.stall_exits), figures
    assert report.longest_unnoticed_s <= DETECTION_LIMIT_S, figures


@pytest.mark.timeout(400)
def test_a_worker_restarted_against_a_recreated_broker_does_not_hang(tmp_path):
    """`toneflow broker stop` + `start` on the same port (the memory log is gone): a fresh worker recovers
    its table from the (empty, re-created) changelog and processes new traffic."""
    import os
    import subprocess
    import sys

    from foundation.broker_state import free_port
    from foundation.settings import Settings
    from streams.liveness import check_health
    from streams.simulator import plan_traffic, send
    from tests.streams_harness import start_worker, stop, wait_for
    from warehouse.catalog import connect

    env = {**os.environ, "TONEFLOW_DATA_DIR": str(tmp_path / "broker"), "TONEFLOW_BROKER_PORT": str(free_port())}
    env.pop("TONEFLOW_KAFKA_BOOTSTRAP", None)

    def cli(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "toneflow", "broker", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    cli("start")
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=f"127.0.0.1:{env['TONEFLOW_BROKER_PORT']}")
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        def accepted(ids: set[str]) -> bool:
            try:
                rows = {r[0] for r in connect(settings).execute("SELECT event_id FROM accepted_examples").fetchall()}
            except Exception:  # noqa: BLE001 - a file replaced mid-read: ask again
                return False
            return ids <= rows

        first = plan_traffic(settings, 40, 11)
        send(settings, first, progress=False)
        wait_for(lambda: accepted(set(first.expected_accepted)), 180, "the first traffic to be accepted")
        stop(worker)
        cli("stop")
        cli("start")  # a new, empty broker: every topic, the changelog included, re-created
        worker = start_worker(settings, log)
        second = plan_traffic(settings, 40, 12)
        send(settings, second, progress=False)
        wait_for(lambda: accepted(set(second.expected_accepted)), 180, "the worker on the re-created broker")
        assert worker.poll() is None, log.read_text()[-3000:]
        # The re-created log starts again at offset 0: the second traffic's batches have the first's
        # offsets and must not replace their files (docs/reliability.md §9, "a re-created log").
        both = set(first.expected_accepted) | set(second.expected_accepted)
        assert len(both) == len(first.expected_accepted) + len(second.expected_accepted)
        assert accepted(both), "the first traffic's accepted examples were lost when the log was re-created"
        assert check_health(settings).ok, check_health(settings).message
    finally:
        stop(worker)
        cli("stop")

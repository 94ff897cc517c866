"""Trigger run markers: who may (re)claim a trigger, and what release and failure leave behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from foundation.settings import Settings
from trainer import runs


def _write_marker(settings: Settings, trigger_id: str, **record: object) -> None:
    path = runs.models_dir(settings) / "runs" / f"{trigger_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"trigger_id": trigger_id, "host": socket.gethostname(), "at": 1.0, **record}))


def test_claim_once_then_refused_until_done_or_failed(tmp_path) -> None:
    s = Settings(data_dir=tmp_path)
    assert runs.claim_trigger(s, "t-1") and runs.trigger_record(s, "t-1")["status"] == "running"
    runs.finish_trigger(s, "t-1", "v000001")
    assert not runs.claim_trigger(s, "t-1")  # done: never trained again
    runs.fail_trigger(s, "t-2", "RuntimeError: out of memory")
    assert runs.trigger_record(s, "t-2")["error"] == "RuntimeError: out of memory"
    assert runs.claim_trigger(s, "t-2")  # a failed run may be claimed again


def test_a_dead_claimant_or_our_own_pid_is_taken_over_a_live_one_is_not(tmp_path) -> None:
    s = Settings(data_dir=tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _write_marker(s, "t-dead", status="running", pid=int(gone.stdout))
    assert runs.claim_trigger(s, "t-dead")
    # A restarted container gets the same pid back; the old claim is then ours and must not block us.
    _write_marker(s, "t-self", status="running", pid=os.getpid())
    assert runs.claim_trigger(s, "t-self")
    _write_marker(s, "t-live", status="running", pid=os.getppid())  # another live process on this host
    assert not runs.claim_trigger(s, "t-live")
    _write_marker(s, "t-far", status="running", pid=1, host="another-host")  # cannot tell: leave it
    assert not runs.claim_trigger(s, "t-far")


def test_release_drops_only_our_own_running_claim(tmp_path) -> None:
    s = Settings(data_dir=tmp_path)
    assert runs.claim_trigger(s, "t-mine")
    runs.release_trigger(s, "t-mine")
    assert runs.trigger_record(s, "t-mine") is None
    _write_marker(s, "t-other", status="running", pid=os.getppid())
    runs.release_trigger(s, "t-other")
    assert runs.trigger_record(s, "t-other")["pid"] == os.getppid()
    runs.finish_trigger(s, "t-done", "v000002")
    runs.release_trigger(s, "t-done")
    assert [r["trigger_id"] for r in runs.trigger_records(s)] == ["t-other", "t-done"]  # oldest first

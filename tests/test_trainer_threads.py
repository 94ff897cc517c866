"""How many CPU threads a fit takes: the cores other work is using right now, not a minute ago."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from trainer.students.base import auto_threads, busy_cores

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc/stat")


@pytest.fixture
def spinner():
    """One other process keeping one core busy, on a box with a core to spare for it."""
    before = busy_cores(0.3)
    cores = os.cpu_count() or 1
    if before is None or before > cores - 1.2:
        pytest.skip(f"{before} of {cores} cores already busy: one more busy core would not show")
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)  # past its start-up
    yield proc
    proc.kill()
    proc.wait()


def test_a_busy_core_is_counted_and_left_alone(spinner) -> None:
    cores = os.cpu_count() or 1
    busy = busy_cores(0.5)
    assert busy is not None and busy >= 0.7, busy
    assert auto_threads() <= max(1, cores - 1)


def test_work_that_just_ended_does_not_count(spinner) -> None:
    """The load average would still count the spinner for a minute; the next window does not."""
    with_spinner = busy_cores(0.5)
    spinner.kill()
    spinner.wait()
    after = [b for b in (busy_cores(0.3) for _ in range(3)) if b is not None]
    assert with_spinner is not None and len(after) == 3
    # Other work on the box (a CI machine's) comes and goes between windows; the spinner's core is
    # in the first window only, so the quietest window after it must be short of that core.
    assert with_spinner - min(after) >= 0.6, (with_spinner, after)

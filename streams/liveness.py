"""The worker's liveness watchdog: stalls judged the way the broker sees them (docs/reliability.md §9).

A worker can look alive while part of it never consumes again (issue 16: after a broker restart
the labeler went on, the join and a sink sat idle, progress lines kept printing and SIGTERM was
ignored). So the judge is not the engine's own idea of itself but the broker's record of it: for
each of the worker's consumer groups (``streams/topics.py:watched_groups``) and each partition of
its input topics, the group's *committed* offset against the partition's *end*:

- a partition **has records** when committed < end (nothing committed: the log's start < end);
- it **makes progress** when its committed offset moved since the previous check;
- it is **stalled** when it had records and made no progress for ``TONEFLOW_WORKER_STALL_S`` of
  time in which the broker answered. Time the broker was unreachable is not counted: a cut
  network is not the worker's fault and a restart would not help; what counts is that the worker
  resumes once the broker is back.

Offsets are committed only after outputs are durable (§1, §3), so committed-offset progress is
the progress that matters, whatever engine consumes: it is read with a client of its own (a
confluent-kafka consumer that never joins the group) from a thread, so a blocked event loop or
a wedged engine cannot hide a stall.

Tansu's high watermark is the last batch's base offset + 1, not the log end, so a committed offset
can be above it; "has records" is committed < high watermark, and records inside the last batch
of an idle partition are not seen (real Kafka's watermark is exact).

Which partitions: the ones this worker owns, per group, when the engine says (an ``Assignment``
callable; the engine feeds an :class:`AssignmentTracker` from its rebalance callback). Until a
group's first assignment, all partitions of that group are judged: a worker that never gets an assignment (a
hang in the group join or in recovery) has stalled too. The tracker keeps the last assignment
through a revoke, so a consumer stuck mid-rebalance is still judged on what it held.

What happens on a stall: the status file ``<data_dir>/worker/status.json`` (rewritten atomically
after every check) says ``stalled`` and names the partitions; the watchdog logs it at CRITICAL
and ends the process with ``os._exit(STALL_EXIT_CODE)``. A hard exit, because a stalled engine is
exactly the one that may not shut down (SIGTERM was ignored for 90 s), and a safe one, because
every output is durable before its offset is committed (the same as the SIGKILL tests in
tests/test_streams_pipeline.py). The process supervisor (compose's ``restart:``) starts a fresh
worker, which resumes from the committed offsets. ``toneflow worker --check`` reads the file for
health checks: non-zero when stalled, unreachable or stale (the process froze or died).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from foundation.osutil import atomic_write_json
from foundation.settings import Settings
from streams.topics import ConsumerGroup

log = logging.getLogger("toneflow.liveness")

STALL_EXIT_CODE = 75  # EX_TEMPFAIL: "try again"; the supervisor restarts the worker
STATUS_FILE = Path("worker") / "status.json"
PROBE_GROUP = "toneflow-liveness"  # the probe's client needs a group id; it never joins or commits

Partition = tuple[str, int]                 # (topic, partition)
Key = tuple[str, str, int]                  # (group, topic, partition)
Assignment = Callable[[], Mapping[str, Collection[Partition]]]  # group -> what this worker owns in it
State = Literal["starting", "ok", "stalled", "unreachable"]


def check_interval(stall_s: float) -> float:
    """Seconds between checks: a tenth of the stall limit (0.5-5 s), so detection is within ~1.1x."""
    return min(max(stall_s / 10, 0.5), 5.0)


def status_path(settings: Settings) -> Path:
    return settings.data_path / STATUS_FILE


class AssignmentTracker:
    """The partitions the engine owns per consumer group, as its last rebalance said; thread-safe, callable.

    The engine calls :meth:`assigned` from its rebalance callback (any thread); the watchdog calls
    the tracker. A group not reported yet is missing from the answer: all its partitions are judged.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, frozenset[Partition]] = {}

    def assigned(self, group_id: str, partitions: Iterable[Partition]) -> None:
        """The whole new assignment of ``group_id`` (not an increment)."""
        with self._lock:
            self._current[group_id] = frozenset(partitions)

    def __call__(self) -> dict[str, frozenset[Partition]]:
        with self._lock:
            return dict(self._current)


@dataclass(frozen=True)
class Offsets:
    """One partition as the broker sees it: the group's committed offset and the log's bounds."""

    committed: int | None  # None: the group never committed on this partition
    low: int
    high: int              # Tansu: the last batch's base offset + 1 (see the module docstring)

    @property
    def position(self) -> int:
        """Where the group resumes: its committed offset, or the log's start when it has none."""
        return self.low if self.committed is None else self.committed


Probe = Callable[[Mapping[Key, int]], dict[Key, int]]  # {key: high watermark} -> {key: true end}, one round


@dataclass
class PartitionHealth:
    group: str
    topic: str
    partition: int
    committed: int | None
    high: int
    lag: int                 # records after the committed offset (-1: not known this check)
    stuck_s: float           # broker-reachable seconds with records and no committed progress
    since_progress_s: float  # wall-clock seconds since the offset last moved (or was caught up)

    @property
    def name(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass
class Health:
    state: State
    message: str
    checked_at: float                     # time.time()
    stall_s: float
    interval_s: float
    pid: int
    assigned_groups: list[str] = field(default_factory=list)  # groups judged on their reported assignment
    unreachable_s: float = 0.0
    check_s: float = 0.0                  # how long the check took (broker calls; a loaded machine shows here)
    partitions: list[PartitionHealth] = field(default_factory=list)

    @property
    def stalled(self) -> list[PartitionHealth]:
        return [p for p in self.partitions if p.stuck_s >= self.stall_s and p.lag > 0]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Track:
    committed: int | None
    stuck_s: float = 0.0
    progress_at: float = 0.0                              # time.time()
    lag: int = -1
    high: int = -1
    ends: dict[int, int] = field(default_factory=dict)    # high watermark -> true end, from probes


class ProgressJudge:
    """Turns successive broker observations into a :class:`Health` (no I/O: the rules live here).

    When the committed offset is at or above the high watermark (Tansu's watermark lags the end
    by up to a batch), whether records remain is not known from the offsets alone: the time still
    counts as stuck, and once it reaches half the limit ``probe`` reads the partition's true end
    (once per high watermark: a new batch moves the watermark). A stall is declared only on
    partitions known to have records.
    """

    def __init__(self, stall_s: float, *, interval_s: float | None = None, pid: int | None = None) -> None:
        self.stall_s = stall_s
        self.interval_s = interval_s if interval_s is not None else check_interval(stall_s)
        self.pid = pid if pid is not None else os.getpid()
        self._tracks: dict[Key, _Track] = {}
        self._last_ok: float | None = None       # monotonic time of the previous answered check
        self._unreachable_since: float | None = None
        self._started = False

    def observe(self, now: float, wall: float, offsets: Mapping[Key, Offsets] | None,
                assignment: Mapping[str, Collection[Partition]] | None = None, error: str = "",
                probe: Probe | None = None) -> Health:
        """One check at monotonic ``now`` / ``time.time()`` ``wall``; ``offsets`` None = broker unreachable."""
        if offsets is None:
            self._last_ok = None  # the gap until the next answer is not counted as stuck time
            if self._unreachable_since is None:
                self._unreachable_since = now
            return self._health("unreachable", f"cannot read offsets from the broker: {error}", wall,
                                assignment, unreachable_s=now - self._unreachable_since)
        self._unreachable_since = None
        dt = 0.0 if self._last_ok is None else now - self._last_ok
        self._last_ok = now
        self._started = True
        for key, off in offsets.items():
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = _Track(committed=off.committed, progress_at=wall)
            elif off.committed != track.committed:
                track.committed, track.stuck_s, track.progress_at = off.committed, 0.0, wall
            else:
                track.stuck_s += dt
            track.high, track.lag = off.high, self._lag(off, track)
        self._probe(offsets, probe)
        for track in self._tracks.values():
            if track.lag == 0:
                track.stuck_s, track.progress_at = 0.0, wall  # caught up: nothing to make progress on
        for key in set(self._tracks) - set(offsets):  # a topic deleted / a group gone
            del self._tracks[key]
        health = self._health("ok", "", wall, assignment)
        stalled = health.stalled
        if stalled:
            health.state = "stalled"
            worst = max(stalled, key=lambda p: p.stuck_s)
            names = ", ".join(f"{p.name} ({p.lag} behind)" for p in stalled[:6])
            more = f" and {len(stalled) - 6} more" if len(stalled) > 6 else ""
            health.message = (f"no committed progress for {worst.stuck_s:.0f} s (limit {self.stall_s:g} s, "
                              f"TONEFLOW_WORKER_STALL_S) on {len(stalled)} partition(s) with records: {names}{more}")
        else:
            lag = sum(max(p.lag, 0) for p in health.partitions)
            health.message = f"{len(health.partitions)} partitions, {lag} records behind"
        return health

    @staticmethod
    def _lag(off: Offsets, track: _Track) -> int:
        """Records after the committed offset; -1 while not known (at or above Tansu's watermark)."""
        if off.high <= off.low:
            return 0
        if off.position < off.high:
            return off.high - off.position  # at least; exact on Kafka
        end = track.ends.get(off.high)
        return -1 if end is None else max(0, end - off.position)

    def _probe(self, offsets: Mapping[Key, Offsets], probe: Probe | None) -> None:
        """Read the true end of every partition still for half the limit with an unknown lag, in one round."""
        if probe is None:
            return
        wanted = {key: offsets[key].high for key, track in self._tracks.items()
                  if track.lag < 0 and track.stuck_s >= self.stall_s / 2}
        if not wanted:
            return
        try:
            ends = probe(wanted)
        except Exception as err:  # noqa: BLE001 - the broker went away mid-probe: ask next time
            log.warning("cannot read the end of %d partitions: %s", len(wanted), err)
            return
        for key, end in ends.items():
            track = self._tracks[key]
            track.ends = {wanted[key]: end}
            track.lag = self._lag(offsets[key], track)

    def _health(self, state: State, message: str, wall: float, assignment: Mapping[str, Collection[Partition]] | None, *,
                unreachable_s: float = 0.0) -> Health:
        if state == "unreachable" and not self._started:
            state = "starting"  # not reached yet since start: the health check's start period covers it
        judged = []
        for key, track in sorted(self._tracks.items()):
            group, topic, partition = key
            if assignment and group in assignment and (topic, partition) not in assignment[group]:
                continue
            judged.append(PartitionHealth(
                group=group, topic=topic, partition=partition, committed=track.committed,
                high=track.high, lag=track.lag, stuck_s=round(track.stuck_s, 2),
                since_progress_s=round(max(0.0, wall - track.progress_at), 2)))
        return Health(state=state, message=message, checked_at=wall, stall_s=self.stall_s,
                      interval_s=self.interval_s, pid=self.pid, assigned_groups=sorted(assignment or ()),
                      unreachable_s=round(unreachable_s, 2), partitions=judged)


class BrokerOffsets:
    """Reads committed offsets and watermarks with clients of its own (never members of the group)."""

    def __init__(self, settings: Settings, groups: Iterable[ConsumerGroup], *, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.groups = tuple(groups)
        self.timeout_s = timeout_s
        self._clients: dict[str, Any] = {}

    def _client(self, group_id: str) -> Any:
        from confluent_kafka import Consumer

        from foundation.kafka import consumer_config

        client = self._clients.get(group_id)
        if client is None:
            conf = consumer_config(self.settings, group_id, **{
                # librdkafka's per-connection errors during a broker outage would flood the worker's
                # log; the watchdog reports the outage once, in its status.
                "log_level": 0,
                # Back within a second of the broker's return (the default backs off up to 10 s,
                # which would delay every detection after an outage by as much).
                "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000,
                "enable.partition.eof": True,  # the probe stops at the end
            })
            client = self._clients[group_id] = Consumer(conf)
        return client

    def read(self) -> dict[Key, Offsets]:
        """Every watched partition's offsets; raises ``confluent_kafka.KafkaException`` when unreachable."""
        from confluent_kafka import KafkaException, TopicPartition

        out: dict[Key, Offsets] = {}
        for group in self.groups:
            client = self._client(group.group_id)
            metadata = client.list_topics(timeout=self.timeout_s)
            tps = [TopicPartition(t, p) for t in group.topics if t in metadata.topics
                   for p in sorted(metadata.topics[t].partitions)]
            if not tps:
                continue
            committed = {(tp.topic, tp.partition): tp for tp in client.committed(tps, timeout=self.timeout_s)}
            for tp in tps:
                low, high = client.get_watermark_offsets(tp, timeout=self.timeout_s, cached=False)
                c = committed.get((tp.topic, tp.partition))
                if c is not None and c.error is not None:
                    raise KafkaException(c.error)
                offset = c.offset if c is not None and c.offset >= 0 else None
                out[(group.group_id, tp.topic, tp.partition)] = Offsets(committed=offset, low=low, high=high)
        return out

    def true_ends(self, highs: Mapping[Key, int]) -> dict[Key, int]:
        """Each partition's end, read from its last batch on (Tansu's watermark is that batch's base + 1).

        All partitions in one assignment, read until each reports its end: one round however many.
        """
        from foundation.kafka import read_true_ends

        keys: dict[Partition, list[Key]] = {}
        highs_by_tp: dict[Partition, int] = {}  # the end is the log's, whichever group asks
        for key, high in highs.items():
            keys.setdefault(key[1:], []).append(key)
            highs_by_tp[key[1:]] = high
        # PROBE_GROUP never commits: it only reads the last records
        ends, late = read_true_ends(self._client(PROBE_GROUP), highs_by_tp, self.timeout_s)
        # A partition that did not reach its end in time stays unknown (asked again next check).
        return {key: end for tp, end in ends.items() if tp not in late for key in keys[tp]}

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing during shutdown: nothing left to do
                pass
        self._clients.clear()


def exit_stalled(health: Health) -> None:
    """Log the stall loudly and end the process at once with STALL_EXIT_CODE (why: module docstring)."""
    log.critical("worker stalled: %s; exiting with code %d so that the supervisor restarts it",
                 health.message, STALL_EXIT_CODE)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(STALL_EXIT_CODE)


class Watchdog:
    """Checks the worker's groups every few seconds from a daemon thread; see the module docstring."""

    def __init__(self, settings: Settings, groups: Iterable[ConsumerGroup], assignment: Assignment | None = None, *,
                 on_stall: Callable[[Health], None] = exit_stalled) -> None:
        self.settings = settings
        self.assignment = assignment
        self.judge = ProgressJudge(settings.worker_stall_s)
        self.offsets = BrokerOffsets(settings, groups, timeout_s=max(1.0, min(5.0, self.judge.interval_s * 2)))
        self.on_stall = on_stall
        self.path = status_path(settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: Health | None = None

    def start(self) -> Watchdog:
        self._write(Health(state="starting", message="waiting for the first check", checked_at=time.time(),
                           stall_s=self.judge.stall_s, interval_s=self.judge.interval_s, pid=self.judge.pid))
        self._thread = threading.Thread(target=self._run, name="liveness-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.offsets.close()

    def check(self) -> Health:
        """One check: read the broker, judge, write the status file."""
        from confluent_kafka import KafkaException

        started = time.monotonic()
        assignment = self._assignment()
        try:
            offsets: dict[Key, Offsets] | None = self.offsets.read()
            error = ""
        except KafkaException as err:
            offsets, error = None, str(err.args[0] if err.args else err)
        health = self.judge.observe(time.monotonic(), time.time(), offsets, assignment, error, self.offsets.true_ends)
        health.check_s = round(time.monotonic() - started, 3)
        self._write(health)
        return health

    def _assignment(self) -> Mapping[str, Collection[Partition]] | None:
        if self.assignment is None:
            return None
        try:
            return self.assignment()
        except Exception as err:  # noqa: BLE001 - an engine that cannot say: judge the whole group
            log.warning("cannot read the engine's assignment (%s); judging every partition", err)
            return None

    def _write(self, health: Health) -> None:
        self.last = health
        try:
            atomic_write_json(self.path, health.to_json())
        except OSError as err:  # a full disk must not kill the watchdog; the health check sees it stale
            log.error("cannot write the worker status %s: %s", self.path, err)

    def _run(self) -> None:
        while not self._stop.wait(self.judge.interval_s):
            try:
                health = self.check()
            except Exception:  # noqa: BLE001 - the watchdog must outlive any one bad check
                log.exception("liveness check failed")
                continue
            if health.state == "stalled":
                self.on_stall(health)


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    message: str


def read_status(settings: Settings) -> dict[str, Any] | None:
    import json

    try:
        return dict(json.loads(status_path(settings).read_text()))
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # written atomically, so only a foreign file: treat as missing


def check_health(settings: Settings, now: float | None = None) -> HealthReport:
    """What ``toneflow worker --check`` says: ok only for a fresh status that is not stalled."""
    path = status_path(settings)
    status = read_status(settings)
    if status is None:
        return HealthReport(False, f"no worker status at {path}: the worker is not running with "
                                   f"TONEFLOW_DATA_DIR={settings.data_dir} (start it with `toneflow worker`)")
    now = time.time() if now is None else now
    age = now - float(status.get("checked_at", 0))
    # Generous: a check on a loaded machine can take several seconds (each broker call may wait up
    # to its timeout); stale means the watchdog stopped, not that it was slow.
    stale_after = max(5 * float(status.get("interval_s", 5.0)), 30.0)
    pid = status.get("pid")
    if age > stale_after:
        return HealthReport(False, f"worker status is {age:.0f} s old (pid {pid}, checked every "
                                   f"{status.get('interval_s')} s): the worker is frozen or gone; restart it")
    state = status.get("state")
    message = status.get("message", "")
    if state == "stalled":
        return HealthReport(False, f"worker stalled (pid {pid}): {message}")
    if state == "unreachable":
        return HealthReport(False, f"worker cannot reach the broker for {status.get('unreachable_s', 0):.0f} s "
                                   f"(pid {pid}): {message}")
    return HealthReport(True, f"worker {state} (pid {pid}): {message}")

"""``toneflow trainer``: the trainer service, the consumer of ``toneflow.retrain``.

The stream worker's trigger only emits a RetrainEvent; this service (on the GPU machine in
production, see docker-compose.yml) reads the topic in a consumer group and runs one training per
``trigger_id``, in this process (``trainer.train.main``). Per record:

1. decode the RetrainEvent (a record that is not one is logged and skipped);
2. a trigger whose run marker (``trainer/runs.py``) says *done* is a duplicate: nothing to do;
3. a trigger whose model is already registered (killed between the registry commit and the
   marker) is finished without training again: eval, gate, warehouse rows, marker;
4. otherwise train (``--incremental``: continue from the current model), register, gate;
5. only then commit the record's offset.

So a crash anywhere before step 5 redelivers the trigger, and steps 2-3 make the redelivery train
at most once. A training run that raises is recorded as *failed* (the trigger may be claimed again
by hand, ``toneflow train --incremental --trigger-id ID``; the next trigger covers its data anyway)
and its offset committed, so one bad run does not block the topic. SIGTERM stops at once: a run in
flight is abandoned, its claim released and its offset left uncommitted, so the next start redoes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from foundation.errors import BrokerError
from foundation.kafka import consumer_config
from foundation.settings import Settings
from schemas.events import TOPIC_RETRAIN, RetrainEvent
from trainer import registry
from trainer.config import TrainConfig
from trainer.exceptions import GateRejected
from trainer.runs import (
    fail_trigger,
    finish_trigger,
    registered_for_trigger,
    release_trigger,
    trigger_record,
)

log = logging.getLogger(__name__)
GROUP = "toneflow-trainer"
# A training run blocks poll() for its whole length. With librdkafka's 5-minute default the member
# would leave the group mid-run and the commit after it would fail; 24 h is librdkafka's maximum.
MAX_POLL_INTERVAL_MS = 86_400_000


class ServiceStopped(BaseException):  # noqa: N818 - a stop request, not an error
    """Raised inside a training run by a stop request (SIGTERM). A BaseException, so that the
    ``except Exception`` blocks of the training code do not swallow it."""


@dataclass(frozen=True)
class Handled:
    """What the service did with one record."""

    trigger_id: str | None
    outcome: str  # trained | duplicate | recovered | skipped | failed | invalid
    version: str | None
    detail: str
    partition: int
    offset: int


def _say(line: str) -> None:
    print(f"trainer: {line}", flush=True)


class TrainerService:
    """One consumer of ``toneflow.retrain``; ``run`` until ``request_stop`` (or ``max_records``)."""

    def __init__(self, settings: Settings, cfg: TrainConfig | None = None, group: str = GROUP,
                 say: Callable[[str], None] = _say) -> None:
        self.settings, self.cfg, self.group, self.say = settings, cfg or TrainConfig(), group, say
        self._stopping = False
        self._training = False

    def request_stop(self) -> None:
        """Stop after the current poll; abandon a training run in flight (see the module docstring)."""
        self._stopping = True
        if self._training:
            self._training = False
            raise ServiceStopped

    def run(self, max_records: int = 0) -> list[Handled]:
        """Consume until stopped (or ``max_records`` records handled, if > 0); returns what was done."""
        from confluent_kafka import Consumer, KafkaException

        consumer = Consumer(consumer_config(self.settings, self.group, **{
            "max.poll.interval.ms": MAX_POLL_INTERVAL_MS}))
        consumer.subscribe([TOPIC_RETRAIN])
        self.say(f"listening on {TOPIC_RETRAIN} as consumer group {self.group}")
        done: list[Handled] = []
        try:
            while not self._stopping and not (max_records and len(done) >= max_records):
                msg = consumer.poll(1.0)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.fatal():
                        text = f"Kafka consumer failed: {error}; check the broker and restart the trainer"
                        raise BrokerError(text)
                    log.warning("consumer error (retrying): %s", error)
                    continue
                handled = self.handle(msg.value(), msg.partition() or 0, msg.offset() or 0)
                try:
                    consumer.commit(message=msg, asynchronous=False)
                    committed = f"offset {msg.offset()} committed"
                except KafkaException as err:  # e.g. a rebalance during the run: the redelivery is a no-op
                    committed = f"offset {msg.offset()} not committed ({err}); its redelivery will do nothing"
                self.say(f"trigger {handled.trigger_id or '?'} {handled.outcome}: {handled.detail} ({committed})")
                done.append(handled)
        except ServiceStopped:
            pass
        finally:
            consumer.close()  # leaves the group at once, so a restarted service is assigned without waiting
        self.say("stopped")
        return done

    def handle(self, value: bytes | None, partition: int, offset: int) -> Handled:
        """Everything up to (not including) the commit for one record."""
        where = f"{TOPIC_RETRAIN}[{partition}]@{offset}"
        try:
            event = RetrainEvent.model_validate_json(value or b"")
        except ValidationError as err:
            first = err.errors()[0]
            return Handled(None, "invalid", None, f"{where} is not a RetrainEvent ({first['msg']}); skipped",
                           partition, offset)
        tid = event.trigger_id
        self.say(f"trigger {tid} received from {where}: {event.reason}")

        def result(outcome: str, version: str | None, detail: str) -> Handled:
            return Handled(tid, outcome, version, detail, partition, offset)

        record = trigger_record(self.settings, tid)
        if record and record.get("status") == "done":
            return result("duplicate", record.get("version"),
                          f"already trained ({record.get('version')}); nothing to do")
        version = registered_for_trigger(self.settings, tid)
        if version is not None:
            return result("recovered", version, self._finish_registered(tid, version))
        self.say(f"trigger {tid} training (incremental, budget {self.cfg.max_minutes:g} min)")
        try:
            outcome = self._train(tid)
        except ServiceStopped:
            self._abandon(tid)
            raise
        except Exception as err:  # noqa: BLE001 - one failed run must not stop the service
            if self._stopping:
                # The stop came while code that reports it as its own error was running: a C extension
                # being imported when the signal arrived turns it into "ImportError: initialization
                # failed" (seen in CI: onnxruntime, loaded by the teacher's first encoding). A run that
                # ends while the service stops is abandoned, never failed: failed is committed for good.
                self._abandon(tid)
                raise ServiceStopped from err
            log.exception("trigger %s: training failed", tid)
            fail_trigger(self.settings, tid, f"{type(err).__name__}: {err}")
            return result("failed", None, f"{type(err).__name__}: {err}; rerun it with "
                                          f"`toneflow train --incremental --trigger-id {tid}`")
        if outcome.get("skipped"):
            return result("skipped", None, str(outcome["reason"]))
        verdict = "promoted to current" if outcome["promoted"] else f"kept current ({outcome.get('reason')})"
        return result("trained", outcome["version"], f"{outcome['version']} overall {outcome['overall']:.4f} on "
                                                     f"{outcome['n_test']} test rows, {verdict}")

    def _abandon(self, trigger_id: str) -> None:
        release_trigger(self.settings, trigger_id)
        self.say(f"trigger {trigger_id} abandoned: stopping mid-run; offset not committed, the next start redoes it")

    def _train(self, trigger_id: str) -> dict[str, Any]:
        from trainer.train import main

        self._training = True
        try:
            return main(replace(self.cfg, trigger_id=trigger_id, incremental=True), self.settings)
        finally:
            self._training = False

    def _finish_registered(self, trigger_id: str, version: str) -> str:
        """Do what a run that died after registering ``version`` left undone: its eval, the gate, the
        warehouse rows (written per version, so a second write replaces the first) and the marker."""
        from trainer import snapshot
        from trainer.evaluate import evaluate_student
        from trainer.runs import write_warehouse_rows
        from trainer.train import gate_eval

        meta = registry.manifest(self.settings, version)
        test_id, rows = snapshot.benchmark_set(self.settings, snapshot.load(self.settings, meta["snapshot"]))
        result = evaluate_student(registry.load_student(self.settings, version), rows)
        registry.record_eval(self.settings, version, test_id, result.record())
        cur = registry.read_current(self.settings)
        promoted = cur is not None and (cur["version"] == version or version in cur.get("history", []))
        verdict = "already promoted once" if promoted else "not promoted (--no-promote)"
        if self.cfg.promote and not promoted:
            try:
                promoted = registry.promote(self.settings, version, test_set=gate_eval(self.settings, version),
                                            margin=self.cfg.margin)["promoted"]
                verdict = "promoted to current"
            except GateRejected as err:
                verdict = f"kept current ({err})"
        write_warehouse_rows(self.settings, {"version": version, "promoted": promoted}, meta, result)
        finish_trigger(self.settings, trigger_id, version)
        return f"{version} was registered before a crash; not training again, {verdict}"

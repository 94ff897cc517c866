"""`toneflow trainer` on the real embedded broker: one training per trigger_id, the offset committed
only after the run is recorded, a killed run redone exactly once, a duplicate trigger a no-op."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from foundation.kafka import consumer_config, producer_config
from foundation.settings import Settings
from schemas.events import TOPIC_RETRAIN, RetrainEvent, to_json_bytes
from tests.streams_harness import wait_for
from trainer import registry
from trainer.config import TrainConfig
from trainer.runs import claim_trigger, trigger_record
from trainer.service import ServiceStopped, TrainerService

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LOOKS = {
    "golden hour": {"adjust": {"temperature": 30, "highlights": 20}, "filter": {"name": "warm_GoldenHour", "intensity": 60}},
    "film noir": {"adjust": {"contrast": 40, "saturation": -100}, "filter": {"name": "mono_Noir", "intensity": 80}},
    "cool morning": {"adjust": {"temperature": -25, "exposure": 10}},
    "lush greens": {"selective_adjust": {"green": {"saturation": 30, "luminance": 10}}},
}
FRAMES = ("{p}", "make it {p}", "{p} please", "give me {p}", "{p} look", "{p} vibe", "i want {p}", "go for {p}")
# The smallest real run: frozen encoder, one epoch, no augmentation (as tests/test_trainer_train.py).
TINY = {"finetune": "frozen", "epochs": 1, "progress": False, "auto_augment": False}
TINY_FLAGS = ("--finetune", "frozen", "--epochs", "1", "--no-progress", "--no-auto-augment")


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "labelled.jsonl"
    rows = [{"prompt": f.format(p=p), "edit": e, "exporters": 1 + i % 6}
            for p, e in LOOKS.items() for i, f in enumerate(FRAMES)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _settings(broker: Settings, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", kafka_bootstrap=broker.kafka_bootstrap, test_fraction=0.2,
                    val_fraction=0.2)


def _send(settings: Settings, *trigger_ids: str) -> list[int]:
    """Produce one RetrainEvent per id (keyed by it, as the worker's trigger does); returns partitions."""
    partitions: list[int] = []
    producer = Producer(producer_config(settings))
    for tid in trigger_ids:
        event = RetrainEvent(trigger_id=tid, reason="test trigger", new_examples=32)
        producer.produce(TOPIC_RETRAIN, key=tid.encode(), value=to_json_bytes(event),
                         on_delivery=lambda err, msg: partitions.append(-1 if err else msg.partition()))
    assert producer.flush(20) == 0 and -1 not in partitions
    return partitions


def _committed(settings: Settings, group: str, partition: int) -> int:
    consumer = Consumer(consumer_config(settings, group))  # not subscribed: reads the group's offsets only
    try:
        return consumer.committed([TopicPartition(TOPIC_RETRAIN, partition)], timeout=20)[0].offset
    finally:
        consumer.close()


def _models_for(settings: Settings, trigger_id: str) -> list[str]:
    return [v for v in registry.version_names(settings)
            if registry.manifest(settings, v)["config"]["trigger_id"] == trigger_id]


def _runs_for(settings: Settings, trigger_id: str) -> list[str]:
    """Versions of the warehouse's ``training_runs`` rows trained for ``trigger_id``."""
    from warehouse.catalog import connect

    rows = connect(settings).execute("SELECT version, config FROM training_runs ORDER BY version").fetchall()
    return [v for v, config in rows if json.loads(config)["trigger_id"] == trigger_id]


def test_duplicate_trigger_does_nothing(fresh_broker_settings: Settings, tmp_path: Path, unique: str) -> None:
    settings = _settings(fresh_broker_settings, tmp_path)
    group = f"trainer-{unique}"
    (partition, _) = _send(settings, "t-dup", "t-dup")  # the worker re-fired after a crash, or a redelivery
    lines: list[str] = []
    cfg = TrainConfig(input=str(_data(tmp_path)), **TINY)  # type: ignore[arg-type]
    done = TrainerService(settings, cfg, group=group, say=lines.append).run(max_records=2)
    assert [(h.trigger_id, h.outcome) for h in done] == [("t-dup", "trained"), ("t-dup", "duplicate")]
    assert _models_for(settings, "t-dup") == ["v000001"] == registry.version_names(settings)
    assert _runs_for(settings, "t-dup") == ["v000001"]
    assert trigger_record(settings, "t-dup")["status"] == "done"
    assert _committed(settings, group, partition) == 2  # both records committed, the second without a run
    assert sum("t-dup training" in line for line in lines) == 1
    assert any("t-dup duplicate: already trained (v000001)" in line for line in lines)


def test_a_failed_run_is_recorded_and_committed_not_retried_forever(fresh_broker_settings: Settings,
                                                                   tmp_path: Path, unique: str) -> None:
    settings = _settings(fresh_broker_settings, tmp_path)
    group = f"trainer-{unique}"
    (partition,) = _send(settings, "t-bad")
    cfg = TrainConfig(input=str(tmp_path / "missing.jsonl"), **TINY)  # type: ignore[arg-type]
    (handled,) = TrainerService(settings, cfg, group=group, say=lambda line: None).run(max_records=1)
    assert handled.outcome == "failed" and "--trigger-id t-bad" in handled.detail
    record = trigger_record(settings, "t-bad")
    assert record is not None and record["status"] == "failed" and "missing.jsonl" in record["error"]
    assert _committed(settings, group, partition) == 1 and registry.version_names(settings) == []


class StoppedInsideAnImport(TrainerService):
    """A run that SIGTERM interrupts while a C extension module is being imported: the import machinery
    reports the handler's ``ServiceStopped`` as ``ImportError: initialization failed`` (its cause)."""

    def _train(self, trigger_id: str) -> dict[str, object]:
        assert claim_trigger(self.settings, trigger_id)  # as trainer.train.main does first
        self._training = True
        try:
            try:
                self.request_stop()  # what the signal handler calls (trainer/service_cli.py)
            except ServiceStopped as stop:
                msg = "initialization failed"
                raise ImportError(msg) from stop
        finally:
            self._training = False
        msg = "unreachable: request_stop raises mid-run"
        raise AssertionError(msg)


def test_a_stop_reported_as_another_error_still_abandons_the_run(fresh_broker_settings: Settings,
                                                                 tmp_path: Path, unique: str) -> None:
    settings = _settings(fresh_broker_settings, tmp_path)
    group = f"trainer-{unique}"
    (partition,) = _send(settings, "t-import")
    lines: list[str] = []
    cfg = TrainConfig(input=str(_data(tmp_path)), **TINY)  # type: ignore[arg-type]
    assert StoppedInsideAnImport(settings, cfg, group=group, say=lines.append).run(max_records=1) == []
    assert any("t-import abandoned" in line for line in lines), lines
    assert not any("t-import failed" in line for line in lines), lines
    assert trigger_record(settings, "t-import") is None  # not marked failed: the claim is released
    assert _committed(settings, group, partition) < 0  # and the trigger is redelivered to the next start


def _start(settings: Settings, group: str, data: Path, log: Path, failpoints: str = "",
           flags: tuple[str, ...] | list[str] = TINY_FLAGS) -> subprocess.Popen:
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(settings.data_dir), "TONEFLOW_KAFKA_BOOTSTRAP":
           str(settings.kafka_bootstrap), "TONEFLOW_TEST_FRACTION": "0.2", "TONEFLOW_VAL_FRACTION": "0.2",
           "TONEFLOW_FAILPOINTS": failpoints}
    return subprocess.Popen([sys.executable, "-m", "toneflow", "trainer", "--group", group, "--input", str(data),
                             *flags], env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("failpoint", "outcome"), [
    ("registry.commit.before_rename", "trained"),  # killed after the fit, nothing registered: train again
    ("train.after_register", "recovered"),         # killed after registering: finish it, do not train again
])
def test_killed_mid_run_the_trigger_is_redone_exactly_once(fresh_broker_settings: Settings, tmp_path: Path,
                                                           unique: str, failpoint: str, outcome: str) -> None:
    settings = _settings(fresh_broker_settings, tmp_path)
    group, data = f"trainer-{unique}", _data(tmp_path)
    (partition,) = _send(settings, "t-kill")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    first = _start(settings, group, data, first_log, failpoints=failpoint)
    try:
        assert first.wait(300) == 137, first_log.read_text()  # the failpoint: like SIGKILL, no cleanup
    finally:
        first.kill()
    assert "trigger t-kill training" in first_log.read_text()
    assert trigger_record(settings, "t-kill")["status"] == "running"  # claimed by a process now dead
    assert _committed(settings, group, partition) < 0  # nothing committed: the trigger will be redelivered

    second = _start(settings, group, data, second_log)
    try:
        wait_for(lambda: f"t-kill {outcome}:" in second_log.read_text(), 300, f"the redelivered trigger {outcome}")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, second_log.read_text()  # a clean stop
    finally:
        second.kill()
    log = second_log.read_text()
    assert log.count("trigger t-kill received") == 1 and "trainer: stopped" in log
    assert _models_for(settings, "t-kill") == ["v000001"] == registry.version_names(settings)
    assert _runs_for(settings, "t-kill") == ["v000001"]  # one recorded training run, also after recovery
    record = trigger_record(settings, "t-kill")
    assert record is not None and (record["status"], record["version"]) == ("done", "v000001")
    assert registry.read_current(settings)["version"] == "v000001"  # the first model passes the gate
    assert _committed(settings, group, partition) == 1  # committed once the run was recorded


def test_sigterm_mid_run_stops_at_once_and_leaves_the_trigger_to_the_next_start(fresh_broker_settings: Settings,
                                                                     tmp_path: Path, unique: str) -> None:
    settings = _settings(fresh_broker_settings, tmp_path)
    group, data, log = f"trainer-{unique}", _data(tmp_path), tmp_path / "service.log"
    (partition,) = _send(settings, "t-term")
    # A run far longer than the test waits (LoRA, many epochs, no early stop), so SIGTERM lands mid-fit.
    proc = _start(settings, group, data, log, flags=["--epochs", "500", "--patience", "500", "--no-progress",
                                                     "--no-auto-augment"])
    try:
        wait_for(lambda: "trigger t-term training" in log.read_text(), 120, "the run to start")
        wait_for(lambda: trigger_record(settings, "t-term") is not None, 120, "the run to claim its trigger")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        proc.kill()
    assert "t-term abandoned" in log.read_text() and "trainer: stopped" in log.read_text()
    assert trigger_record(settings, "t-term") is None  # claim released: the redelivery trains it
    assert registry.version_names(settings) == []
    assert _committed(settings, group, partition) < 0  # and the trigger is redelivered

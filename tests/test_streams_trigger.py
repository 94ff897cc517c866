"""The retrain trigger counts de-duplicated warehouse rows and keeps its watermark across restarts."""

from datetime import UTC, datetime, timedelta

from foundation.settings import Settings
from streams import trigger
from warehouse import tables
from warehouse.writer import write_batch

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _accepted(settings, start, n, quality=1.0, look="warm_GoldenHour", offset=0):
    rows = [{**{f.name: None for f in tables.SCHEMAS["accepted_examples"]}, "event_id": f"e{start + i}",
             "look_slice": look, "quality": quality, "ts": T0, "ingested_at": T0 + timedelta(seconds=start + i)}
            for i in range(n)]
    write_batch(settings, "accepted_examples", rows, topic="toneflow.accepted", partition=0,
                first_offset=offset, last_offset=offset + n - 1)


def test_fires_past_threshold_once_per_watermark(tmp_path):
    s = Settings(data_dir=tmp_path, retrain_threshold=10, retrain_min_interval_s=0, retrain_quality_floor=0.5)
    _accepted(s, 0, 6)
    _accepted(s, 100, 8, quality=0.25, offset=6)  # below the quality floor: not counted
    assert trigger.check(s) is None
    _accepted(s, 200, 4, look="mono_Noir", offset=14)
    _accepted(s, 200, 4, look="mono_Noir", offset=14)  # a replayed batch: same rows, not double counted
    event = trigger.check(s)
    assert event is not None and event.new_examples == 10
    assert event.per_slice == {"warm_GoldenHour": 6, "mono_Noir": 4}
    assert trigger.check(s).trigger_id == event.trigger_id  # crash before commit: the same id again
    trigger.commit(s, event)
    assert trigger.check(s) is None  # a restart reads the moved watermark from disk
    assert trigger.load_state(s)["fired"] == [event.trigger_id]
    _accepted(s, 300, 10, offset=30)
    second = trigger.check(s)
    assert second is not None and second.trigger_id != event.trigger_id and second.new_examples == 10


def test_minimum_interval_holds_back(tmp_path):
    s = Settings(data_dir=tmp_path, retrain_threshold=1, retrain_min_interval_s=3600)
    _accepted(s, 0, 3)
    event = trigger.check(s, now=10_000.0)
    trigger.commit(s, event, now=10_000.0)
    _accepted(s, 10, 3, offset=3)
    assert trigger.check(s, now=10_000.0 + 60) is None
    assert trigger.check(s, now=10_000.0 + 3601) is not None

"""Poison records are stopped at the contract (issue 16, item 1).

Each value here passed the contracts once and then crashed a consumer: a timestamp that overflows
``astimezone``, a token count beyond int64, Infinity/NaN written as null, a lone surrogate Arrow
cannot encode. Now the contract refuses them, the teacher clamps a server's absurd usage, and the
property test holds the general rule: whatever validates becomes a warehouse row and a Parquet file.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from schemas import SchemaViolation, validate_event
from schemas.events import (
    INT32_MAX,
    INT64_MAX,
    MAX_TOKENS,
    MAX_TS,
    MIN_TS,
    TOPIC_ACCEPTED,
    TOPIC_DLQ,
    TOPIC_EXPORTS,
    TOPIC_LABELS,
    TOPIC_PROMPTS,
    AcceptedExample,
    DlqRecord,
    ExportEvent,
    LabelEvent,
    PromptEvent,
    to_json_bytes,
)
from teacher.openai_teacher import OpenAITeacher
from teacher.retry import Backoff
from warehouse.catalog import connect
from warehouse.tables import SCHEMAS, Source, to_row
from warehouse.writer import write_batch

PROMPT = {"event_id": "e1", "project_id": "p1", "user_id": "u1", "ts": "2026-11-25T10:00:00Z", "prompt": "warm"}
LABEL = {"event_id": "e1", "project_id": "p1", "user_id": "u1", "prompt": "warm", "prompt_ts": "2026-11-25T10:00:00Z",
         "teacher": {"model": "openai", "version": "v1"}, "edit": {"adjust": {"temperature": 30}}, "latency_ms": 12.0}


@pytest.mark.parametrize(("ts", "bound"), [("9999-12-31T23:00:00-05:00", "less than 3000-01-01T00:00:00Z"),
                                           ("0001-01-01T00:00:00+05:00", "greater than or equal to 1970-01-01T00:00:00Z"),
                                           ("3000-01-01T00:00:00Z", "less than 3000-01-01T00:00:00Z"),
                                           ("1969-12-31T23:59:59Z", "greater than or equal to 1970-01-01T00:00:00Z")])
def test_timestamps_outside_the_bounds_are_refused(ts, bound):
    with pytest.raises(SchemaViolation) as info:
        validate_event("prompt", {**PROMPT, "ts": ts})
    assert info.value.path == "ts" and bound in str(info.value)
    from streams.codec import Raw, decode

    # The worker's path (the record's JSON bytes): a dead letter that names the bound.
    event, bad = decode(Raw(TOPIC_PROMPTS, 0, 0, None, json.dumps({**PROMPT, "ts": ts}).encode()), PromptEvent, "x")
    assert event is None and bad is not None and bad.error_kind == "schema_violation" and bound in bad.error


def test_timestamps_at_the_bounds_pass_and_convert():
    for ts in (MIN_TS, MAX_TS - timedelta(microseconds=1),
               (MAX_TS - timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=-5)))):
        event = validate_event("prompt", {**PROMPT, "ts": ts.isoformat()})
        assert event.ts.astimezone(UTC) == ts


@pytest.mark.parametrize(("field", "value"), [("prompt_tokens", 1e20), ("prompt_tokens", 2**63),
                                              ("completion_tokens", MAX_TOKENS + 1), ("prompt_tokens", -1)])
def test_token_counts_beyond_the_bound_are_refused(field, value):
    with pytest.raises(SchemaViolation) as info:
        validate_event("label", {**LABEL, field: value})
    assert info.value.path == field


@pytest.mark.parametrize("text", ['"cost": Infinity', '"cost": NaN', '"latency_ms": Infinity', '"cost": -Infinity'])
def test_infinity_and_nan_are_refused(text):
    field = text.split(":")[0].strip('"')
    body = {k: v for k, v in LABEL.items() if k != field}
    raw = json.dumps(body)[:-1] + ", " + text + "}"  # json.loads reads these spellings, as the codec does
    with pytest.raises(SchemaViolation) as info:
        validate_event("label", json.loads(raw))
    assert info.value.path == field
    with pytest.raises(SchemaViolation):
        validate_event("label", raw)  # and as JSON text, the path the CLI takes


def test_integers_fit_their_parquet_columns():
    ref = {"topic": TOPIC_PROMPTS, "partition": INT32_MAX, "offset": INT64_MAX}
    assert validate_event("label", {**LABEL, "source": ref}).source.offset == INT64_MAX
    for bad in ({**ref, "partition": INT32_MAX + 1}, {**ref, "offset": INT64_MAX + 1}):
        with pytest.raises(SchemaViolation):
            validate_event("label", {**LABEL, "source": bad})
    with pytest.raises(SchemaViolation):
        validate_event("retrain", {"trigger_id": "t", "reason": "r", "new_examples": 1, "per_slice": {"x": 2**64}})


def test_a_lone_surrogate_is_refused_with_its_path():
    obj = json.loads(json.dumps(PROMPT)[:-1] + ', "served_by": {"kind": "teacher", "model": "m\\ud800", '
                                               '"version": "v", "variant": "A"}}')
    with pytest.raises(SchemaViolation, match=r"served_by\.model: text is not valid Unicode"):
        validate_event("prompt", obj)


# -- the teacher's accounting: a server's usage figure cannot make an invalid label ----------------

def _usage_server(server: HTTPServer, usage: dict) -> str:
    def answer(request: Request) -> Response:
        body = request.get_json()
        payload = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": '{"adjust": {"contrast": 10}}'}}],
                   "usage": usage}
        return Response(json.dumps(payload), status=200, content_type="application/json")  # NaN/Infinity as JS spells them

    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)
    return server.url_for("/v1")


@pytest.mark.parametrize(("prompt_tokens", "expected"), [(1e20, MAX_TOKENS), (-5, 0), (math.inf, MAX_TOKENS),
                                                         (math.nan, 0), ("many", 0), (120, 120)])
def test_teacher_clamps_and_counts_absurd_usage(httpserver, tmp_path, prompt_tokens, expected):
    base_url = _usage_server(httpserver, {"prompt_tokens": prompt_tokens, "completion_tokens": 7, "total_tokens": 0})
    teacher = OpenAITeacher(model="fake", base_url=base_url, api_key="sk-test", price_input_per_1m=0.5,
                            price_output_per_1m=1.5, backoff=Backoff(base_s=0.0, max_s=0.0), cache_path=None)
    try:
        [lab] = asyncio.run(teacher.label(["moody"]))
    finally:
        asyncio.run(teacher.aclose())
    assert lab.ok and (lab.prompt_tokens, lab.completion_tokens) == (expected, 7)
    assert teacher.meter.usage_clamped == (0 if prompt_tokens == 120 else 1)
    assert math.isfinite(lab.cost) and teacher.meter.as_dict()["usage_clamped"] == teacher.meter.usage_clamped
    event = LabelEvent.model_validate({**LABEL, "prompt_tokens": lab.prompt_tokens, "completion_tokens": lab.completion_tokens,
                                       "cost": lab.cost})
    assert validate_event("label", to_json_bytes(event)) == event


@pytest.mark.parametrize("price", ["inf", "nan", "1e300"])
def test_teacher_prices_are_finite_so_every_cost_is(price):
    from pydantic import ValidationError

    from foundation.settings import Settings

    with pytest.raises(ValidationError):
        Settings(teacher_price_input_per_1m=price)
    top = OpenAITeacher(model="m", base_url="http://127.0.0.1:9", price_input_per_1m=1e6, price_output_per_1m=1e6)
    assert math.isfinite(top.meter.price(MAX_TOKENS, MAX_TOKENS))


# -- the property: every record that validates can be written ------------------------------------

_ids = st.text(min_size=1, max_size=12)
_text = st.text(max_size=40)  # hypothesis' text includes NUL, control and astral characters
_ts = st.datetimes(min_value=MIN_TS.replace(tzinfo=None) + timedelta(days=1),
                   max_value=MAX_TS.replace(tzinfo=None) - timedelta(days=1),
                   timezones=st.sampled_from([UTC, timezone(timedelta(hours=-23, minutes=-59)),
                                              timezone(timedelta(hours=14)), timezone(timedelta(hours=-5))]))
_bound_ts = st.one_of(_ts, st.sampled_from([MIN_TS, MAX_TS - timedelta(microseconds=1),
                                            (MIN_TS).astimezone(timezone(timedelta(hours=14))),
                                            (MAX_TS - timedelta(microseconds=1)).astimezone(timezone(timedelta(hours=-23)))]))
_tokens = st.integers(0, MAX_TOKENS)
_float = st.floats(min_value=0, allow_nan=False, allow_infinity=False)
_param = st.integers(-100, 100)
_edit = st.fixed_dictionaries({}, optional={
    "adjust": st.fixed_dictionaries({}, optional={"contrast": _param, "temperature": _param}),
    "filter": st.fixed_dictionaries({"name": st.just("mono_Noir")}, optional={"intensity": st.integers(0, 100)}),
})
_served = st.fixed_dictionaries({"kind": st.sampled_from(["teacher", "student"]), "model": _ids, "version": _ids,
                                 "variant": _ids})
_ref = st.fixed_dictionaries({"topic": _text, "partition": st.integers(0, INT32_MAX), "offset": st.integers(0, INT64_MAX)})
_teacher = st.fixed_dictionaries({"model": _text, "version": _text})
_base = {"event_id": _ids, "project_id": _ids, "user_id": _ids}

# table -> (topic, event kind, model, strategy)
RECORDS = {
    "prompts": (TOPIC_PROMPTS, "prompt", PromptEvent, st.fixed_dictionaries(
        {**_base, "ts": _bound_ts, "prompt": st.text(min_size=1, max_size=500)},
        optional={"served_by": _served, "served_edit": _edit})),
    "exports": (TOPIC_EXPORTS, "export", ExportEvent, st.fixed_dictionaries(
        {**_base, "ts": _bound_ts}, optional={"final_edit": _edit})),
    "labels": (TOPIC_LABELS, "label", LabelEvent, st.fixed_dictionaries(
        {**_base, "prompt": _text, "prompt_ts": _bound_ts, "teacher": _teacher, "edit": _edit, "latency_ms": _float},
        optional={"repairs": st.lists(_text, max_size=3), "prompt_tokens": _tokens, "completion_tokens": _tokens,
                  "cost": _float, "cached": st.booleans(), "served_by": _served, "source": _ref, "ts": _bound_ts})),
    "accepted_examples": (TOPIC_ACCEPTED, "accepted", AcceptedExample, st.fixed_dictionaries(
        {**_base, "prompt": _text, "edit": _edit, "label_source": st.sampled_from(["teacher", "user_corrected"]),
         "teacher_edit": _edit, "teacher": _teacher, "look_slice": _text, "export_event_id": _ids,
         "prompt_ts": _bound_ts, "export_ts": _bound_ts},
        optional={"teacher_tokens": st.integers(0, 2 * MAX_TOKENS), "teacher_cost": _float,
                  "quality": st.floats(0, 1), "label_source_ref": _ref, "export_source_ref": _ref, "ts": _bound_ts})),
    "dlq": (TOPIC_DLQ, "dlq", DlqRecord, st.fixed_dictionaries(
        {"stage": _text, "error_kind": _text, "error": _text, "raw": _text},
        optional={"source": _ref, "key": _text, "raw_truncated": st.booleans(), "event_id": _text, "ts": _bound_ts})),
}


def _json_ready(obj):
    return json.loads(json.dumps(obj, default=lambda v: v.isoformat()))


@pytest.mark.parametrize("table", list(RECORDS))
def test_whatever_validates_becomes_a_parquet_row(table, tmp_path_factory):
    topic, kind, model, strategy = RECORDS[table]
    from foundation.settings import Settings

    written = []

    @hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records=st.lists(strategy, min_size=1, max_size=4), offset=st.integers(0, 2**62))
    def check(records, offset):
        settings = Settings(data_dir=tmp_path_factory.mktemp("wh"))
        events = []
        for rec in records:
            try:
                events.append(validate_event(kind, _json_ready(rec)))
            except SchemaViolation:
                continue  # the contract refused it: the codec dead-letters it, nothing downstream sees it
        if not events:
            return
        for event in events:  # the wire form reads back as the same event
            assert model.model_validate_json(to_json_bytes(event)) == event
        rows = [to_row(table, e, Source(topic, 0, offset + i)) for i, e in enumerate(events)]
        paths = write_batch(settings, table, rows, topic=topic, partition=0, first_offset=offset,
                            last_offset=offset + len(rows) - 1)
        assert sum(pq.ParquetFile(p).metadata.num_rows for p in paths) == len(rows)
        for p in paths:
            assert pq.read_schema(p).names == SCHEMAS[table].names
        got = duckdb.sql(f"SELECT count(*) FROM read_parquet({[str(p) for p in paths]})").fetchall()[0][0]
        assert got == len(rows)
        con = connect(settings)  # and the views over them answer (the de-duplication SQL included)
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] >= 1
        con.execute("SELECT count(*) FROM conflicting_duplicates").fetchall()
        con.execute("SELECT count(*) FROM teacher_spend").fetchall()
        con.close()
        written.append(len(rows))

    check()
    assert sum(written) >= 20, "the strategy must produce records the contract accepts"


def test_the_documented_crashers_are_refused_before_the_writer(tmp_path):
    """The exact values of issue 16 never reach a row: the contract stops each one."""
    crashers = [("prompt", {**PROMPT, "ts": "9999-12-31T23:00:00-05:00"}),
                ("label", {**LABEL, "prompt_tokens": 1e20}),
                ("label", json.loads(json.dumps(LABEL)[:-1] + ', "cost": Infinity}'))]
    for kind, obj in crashers:
        with pytest.raises(SchemaViolation):
            validate_event(kind, obj)
    assert datetime.now(UTC) < MAX_TS  # today's events are inside the bounds


# -- found by the property tests (tests/test_property_agents.py) -------------------------------------

@pytest.mark.parametrize("sig", ["\x80", "é" * 64, "\U0001f600", "\x00"])
def test_a_non_ascii_served_sig_is_a_bad_signature_not_a_crash(sig):
    """``hmac.compare_digest`` raises TypeError on a str with non-ASCII characters: a prompt whose
    ``served_sig`` held one crashed the labeler, and again on every replay. Now it is relabelled."""
    from streams.guard import needs_teacher_call

    prompt = validate_event("prompt", {**PROMPT, "served_sig": sig, "served_edit": {"adjust": {"contrast": 10}},
                                       "served_by": {"kind": "teacher", "model": "m", "version": "v", "variant": "A"}})
    assert needs_teacher_call(prompt, b"k" * 32) is True


def test_an_accepted_example_from_the_largest_label_still_fits_its_sink():
    """A label just under the record limit (a 65,200-character prompt) made an accepted example
    over it, which the accepted sink skipped: neither a row nor a dead letter. Now a label's texts
    are bounded (a prompt's length, ids), the long one is dead-lettered by the join, and the largest
    label the contract allows, every text at its bound in the characters that grow most as JSON,
    gives an accepted example that fits."""
    from foundation.settings import Settings
    from streams.codec import MAX_RECORD_BYTES, Raw, decode
    from streams.join import Join
    from streams.pipeline import Pipeline

    wide = "\x00" * 128
    largest = {**LABEL, "event_id": wide, "project_id": wide, "user_id": wide, "prompt": "\x00" * 500,
               "teacher": {"model": wide, "version": "\x00" * 256},
               "served_by": {"kind": "teacher", "model": wide, "version": wide, "variant": wide},
               "edit": {"adjust": {"contrast": -100, "exposure": -100}, "filter": {"name": "cine_BleachBypass"}},
               "served_edit": {"selective_adjust": {c: {"hue": -100, "saturation": -100, "luminance": -100}
                                                    for c in ("red", "orange", "yellow", "green", "cyan", "blue")}}}
    export = {"event_id": wide, "project_id": wide, "user_id": wide, "ts": "2999-12-31T23:59:59Z",
              "final_edit": largest["served_edit"]}
    too_long = {**LABEL, "project_id": "p2", "prompt": "x" * 65_200}
    raws = [Raw(TOPIC_LABELS, 0, 0, None, json.dumps(largest).encode()),
            Raw(TOPIC_EXPORTS, 0, 1, None, json.dumps(export).encode()),
            Raw(TOPIC_LABELS, 0, 2, None, json.dumps(too_long).encode())]
    outputs, _ = Join(Pipeline(Settings(data_dir="unused")), {}).step(raws, 1e6)
    by_topic = {topic: record for topic, _, record in outputs}
    assert set(by_topic) == {TOPIC_ACCEPTED, TOPIC_DLQ}
    assert by_topic[TOPIC_DLQ].source.offset == 2 and by_topic[TOPIC_DLQ].error_kind == "schema_violation"
    wire = to_json_bytes(by_topic[TOPIC_ACCEPTED])
    assert len(wire) <= MAX_RECORD_BYTES
    assert decode(Raw(TOPIC_ACCEPTED, 0, 0, None, wire), AcceptedExample, "sink.accepted")[1] is None


def test_an_id_with_control_characters_cannot_forge_worker_log_lines(caplog, monkeypatch):
    """The guard's warning wrote project and event ids as they came: an id holding a newline, an
    ANSI escape or a bidi override wrote a forged line (or garbled the terminal) in the worker's log."""
    import logging

    from streams import guard

    forged = "p\n[2026-12-01 00:00:00,000] [1] [ERROR] forged\x1b[2J\u202e"
    prompt = validate_event("prompt", {**PROMPT, "project_id": forged, "served_edit": {"adjust": {"contrast": 10}},
                                       "served_by": {"kind": "teacher", "model": "m", "version": "v", "variant": "A"}})
    monkeypatch.setattr(guard, "UNVOUCHED", guard.Counter())  # the first unvouched prompt of a reason is logged
    with caplog.at_level(logging.WARNING, logger="streams.guard"):
        assert guard.needs_teacher_call(prompt, b"k" * 32) is True
    [message] = [r.getMessage() for r in caplog.records]
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
    assert "forged" in message  # still named, escaped


@pytest.mark.broker
def test_junk_on_the_accepted_and_dlq_topics_is_a_dead_letter_not_skipped(broker_settings, tmp_path):
    """Only the worker writes these two topics, but a foreign producer can too: its junk must be
    accounted for like junk anywhere else (a row or a dead letter), not counted and skipped."""
    import uuid

    from confluent_kafka import Consumer, TopicPartition

    from foundation.kafka import consumer_config
    from foundation.settings import Settings
    from streams.batch_stage import Outbox
    from streams.codec import Raw
    from streams.pipeline import Pipeline
    from streams.sink import SinkStage

    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=broker_settings.kafka_bootstrap)
    pipe = Pipeline(settings=settings)
    pipe.outbox = Outbox(settings, pipe)
    key = f"junk-{uuid.uuid4().hex}".encode()
    stage = SinkStage(pipe, pipe.outbox)
    raws = [Raw(TOPIC_ACCEPTED, 0, 7, key, b"not json"), Raw(TOPIC_DLQ, 0, 9, key, b"\xff\xfe")]
    stage.offsets.track(raws)

    async def begin_and_finish() -> None:
        await (await stage.begin(raws))

    try:
        asyncio.run(begin_and_finish())
    finally:
        pipe.outbox.close()

    # the batch's finisher marked both junk records done: the stage may commit past them
    assert stage.offsets.committable() == {(TOPIC_ACCEPTED, 0): 8, (TOPIC_DLQ, 0): 10}

    # the DLQ topic's junk is stored in the dlq table where it is, as its own dead letter
    rows = connect(settings).execute("SELECT stage, error_kind, bad_topic, bad_offset FROM dlq").fetchall()
    assert rows == [("sink.toneflow.dlq", "not_utf8", TOPIC_DLQ, 9)]
    # the accepted topic's junk went to the DLQ topic, acknowledged before the batch was done
    consumer = Consumer(consumer_config(settings, f"probe-{uuid.uuid4().hex}"))
    consumer.assign([TopicPartition(TOPIC_DLQ, p, 0) for p in range(settings.topic_partitions)])
    found = None
    try:
        for _ in range(60):
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is None and msg.key() == key:
                    found = DlqRecord.model_validate_json(msg.value())
            if found is not None:
                break
    finally:
        consumer.close()
    assert found is not None, "no dead letter for the accepted topic's junk"
    assert (found.stage, found.error_kind, found.source.topic, found.source.offset) == (
        "sink.toneflow.accepted", "not_json", TOPIC_ACCEPTED, 7)

"""The DLQ never drops a record (issue 16, item 2): a dead letter is bounded after JSON encoding.

A value full of NUL/control bytes grows ~6x when JSON-escaped; bounded before encoding, its DLQ
record came out over the DLQ sink's own MAX_RECORD_BYTES and the sink skipped it. Here each dead
letter is fed back through the DLQ sink's decode, as the sink reads it off ``toneflow.dlq``.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import TOPIC_DLQ, TOPIC_PROMPTS, DlqRecord, PromptEvent, to_json_bytes
from streams.codec import MAX_DLQ_BYTES, MAX_RECORD_BYTES, Raw, dead_letter, decode


def _through_the_dlq_sink(bad: DlqRecord) -> DlqRecord:
    """The DLQ record as the DLQ sink decodes it from the topic (streams/sink.py uses decode)."""
    wire = to_json_bytes(bad)
    assert len(wire) <= MAX_DLQ_BYTES < MAX_RECORD_BYTES
    again, worse = decode(Raw(TOPIC_DLQ, 0, 7, None, wire), DlqRecord, f"sink.{TOPIC_DLQ}")
    assert worse is None, worse
    assert again == bad
    return again


def test_control_bytes_that_grow_sixfold_still_reach_the_dlq_table():
    for value in (b"\x00" * 60_000, b"\x01\x1f" * 30_000, b'{"event_id": "e\x00' + b"\x00" * 40_000):
        _, bad = decode(Raw(TOPIC_PROMPTS, 1, 41, b"p1", value), PromptEvent, "labeler.decode")
        assert bad is not None and bad.error_kind in ("not_json", "schema_violation")
        kept = _through_the_dlq_sink(bad)
        assert kept.raw_truncated and kept.raw and value.decode().startswith(kept.raw)
        # as much as fits: one more character would not
        longer = DlqRecord(**{**kept.model_dump(), "raw": value.decode()[:len(kept.raw) + 1]})
        assert len(to_json_bytes(longer)) > MAX_DLQ_BYTES


def test_a_small_bad_record_is_kept_whole():
    value = b'{"prompt": "\x00 not a prompt event"}'
    _, bad = decode(Raw(TOPIC_PROMPTS, 0, 3, b"k", value), PromptEvent, "labeler.decode")
    kept = _through_the_dlq_sink(bad)
    assert kept.raw == value.decode() and not kept.raw_truncated


def test_deep_nesting_and_lone_surrogates_are_dead_lettered_not_raised():
    deep = b"[" * 50_000 + b"]" * 10
    _, bad = decode(Raw(TOPIC_PROMPTS, 0, 1, None, deep), PromptEvent, "labeler.decode")
    assert bad.error_kind == "too_deep"
    _through_the_dlq_sink(bad)
    surrogate = json.dumps({"event_id": "e\ud800", "prompt": "x"}).encode()  # ASCII escapes: valid UTF-8 bytes
    _, bad = decode(Raw(TOPIC_PROMPTS, 0, 2, b"\xff\xfe", surrogate), PromptEvent, "labeler.decode")
    assert bad.error_kind == "schema_violation" and bad.event_id == "e\\ud800"
    _through_the_dlq_sink(bad)


@settings(max_examples=150, deadline=None)
@given(value=st.binary(max_size=MAX_RECORD_BYTES + 10) | st.text().map(lambda t: (t * 2000).encode()),
       key=st.none() | st.binary(max_size=3000), error=st.text(max_size=3000), event_id=st.none() | st.text())
def test_every_dead_letter_fits_the_dlq_sink(value, key, error, event_id):
    bad = dead_letter(Raw(TOPIC_PROMPTS, 0, 9, key, value), "labeler.decode", "not_json", error, event_id)
    kept = _through_the_dlq_sink(bad)
    assert kept.raw_truncated == (kept.raw != value.decode("utf-8", errors="backslashreplace"))

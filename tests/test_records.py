import base64
import json
from pathlib import Path

import pytest
from valuedrift.streams.core.records import (
    ClassifiedResponse,
    DeadLetter,
    RecordError,
    ResponseEvent,
    dump_schema,
    json_schemas,
    parse_event_time,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "streams" / "schemas"


def event(**kw):
    base = {"id": "r1", "monitor_key": "m", "event_time": 1767225600, "prompt": "p", "response": "r"}
    base.update(kw)
    return json.dumps(base).encode()


def test_valid_event_round_trips():
    ev = ResponseEvent.parse_bytes(event(metadata={"model": "x", "temp": 0.7}))
    assert ResponseEvent.parse_bytes(ev.to_bytes()) == ev
    assert ev.schema_version == 1


@pytest.mark.parametrize("raw, fragment", [
    (b"not json", "Invalid JSON"),
    (b"[1, 2]", "record"),
    (event(monitor_key=""), "monitor_key"),
    (event(event_time="yesterday"), "event_time"),
    (event(event_time=1e12), "outside"),
    (event(event_time=-5), "outside"),
    (event(prompt=5), "prompt"),
    (event(schema_version=2), "schema_version"),
    (b'{"id": "r1", "monitor_key": "m", "event_time": NaN, "prompt": "p", "response": "r"}', "event_time"),
])
def test_malformed_events_are_rejected_with_a_reason(raw, fragment):
    with pytest.raises(RecordError, match=fragment):
        ResponseEvent.parse_bytes(raw)


def test_iso_event_times_are_utc():
    assert parse_event_time("2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_event_time("2026-01-01T01:00:00+01:00") == 1767225600.0
    assert parse_event_time("2026-01-01T00:00:00") == 1767225600.0
    with pytest.raises(ValueError):
        parse_event_time(True)


def test_classified_records_reject_unknown_fields():
    with pytest.raises(RecordError, match="surprise: Extra inputs"):
        ClassifiedResponse.parse_bytes(json.dumps({
            "id": "a", "monitor_key": "m", "event_time": 1767225600, "category": "g1", "probs": {"g1": 1.0},
            "model_version": "v", "surprise": 1}))


def test_dead_letter_keeps_the_raw_bytes():
    raw = b"\xff\xfe not utf-8"
    dl = DeadLetter.of(raw, "t", 1, 42, "classify", "bad")
    back = DeadLetter.parse_bytes(dl.to_bytes())
    assert base64.b64decode(back.payload_b64) == raw and back.offset == 42


def test_committed_json_schemas_are_up_to_date():
    for name, schema in json_schemas().items():
        path = SCHEMAS / name
        assert path.exists(), f"{path} missing: run `make schemas`"
        assert path.read_text() == dump_schema(schema), f"{path} is stale: run `make schemas`"


def test_a_classified_record_names_a_classifier_of_bounded_length():
    from pydantic import ValidationError

    ok = dict(id="r1", monitor_key="k", event_time=1767225600.0, category="g1", probs={"g1": 1.0})
    assert ClassifiedResponse(**ok, model_version="m" * 256).model_version == "m" * 256
    for bad in ("", "m" * 257):  # windows keep the versions they saw: an unbounded one would bloat them
        with pytest.raises(ValidationError, match="model_version"):
            ClassifiedResponse(**ok, model_version=bad)

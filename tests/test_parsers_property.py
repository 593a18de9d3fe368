"""Property tests for every parser of outside input: each either returns a valid value or raises its one
documented error type (never a crash of another kind), and valid values survive a round trip."""

from __future__ import annotations

import base64
import hashlib
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from valuedrift.classifier.datasets import DatasetError, parse_examples
from valuedrift.streams.core.records import ClassifiedResponse, DeadLetter, RecordError, ResponseEvent, WindowStatistic
from valuedrift.streams.security import KafkaSecurity
from valuedrift.streams.settings import BrokerURL, Settings, parse_combine, parse_duration

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                max_size=6), max_leaves=20)
FIELDS = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(max_size=600), st.integers()), "monitor_key": st.one_of(st.text(max_size=300), JSON),
    "event_time": st.one_of(st.floats(), st.integers(), st.text(max_size=30)), "prompt": st.one_of(st.text(), JSON),
    "response": st.one_of(st.text(), JSON), "metadata": JSON, "schema_version": st.integers(-2, 3)})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), FIELDS.map(lambda d: json.dumps(d).encode())))
def test_response_events_parse_or_raise_record_error(raw):
    try:
        ev = ResponseEvent.parse_bytes(raw)
    except RecordError as err:
        assert str(err)
        return
    assert ev.id and ev.monitor_key and math.isfinite(ev.event_time)
    assert ResponseEvent.parse_bytes(ev.to_bytes()) == ev


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([ClassifiedResponse, WindowStatistic]))
def test_other_records_parse_or_raise_record_error(raw, record):
    try:
        parsed = record.parse_bytes(raw)
    except RecordError as err:
        assert str(err)
        return
    assert record.parse_bytes(parsed.to_bytes()) == parsed


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.integers(0, 2**31), st.text(max_size=50))
def test_dead_letters_keep_the_payload_its_size_and_hash(raw, offset, reason):
    d = DeadLetter.parse_bytes(DeadLetter.of(raw, "t", 0, offset, "classify", reason).to_bytes())
    assert base64.b64decode(d.payload_b64) == raw and d.payload_bytes == len(raw) and not d.truncated
    assert d.payload_sha256 == hashlib.sha256(raw).hexdigest() and d.offset == offset


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), FIELDS.map(json.dumps),
                          st.fixed_dictionaries({"id": st.text(), "prompt": st.text(), "response": st.text(),
                                                 "label": st.sampled_from(["g1", "g5", "off_topic", "g9", ""])})
                          .map(json.dumps)), max_size=5))
def test_labelled_files_parse_or_raise_dataset_error_naming_the_line(lines):
    try:
        list(parse_examples(lines, "f.jsonl"))
    except DatasetError as err:
        assert str(err).startswith("f.jsonl:")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_settings_parsers_return_or_raise_value_error(text):
    for parse in (parse_duration, BrokerURL.parse, parse_combine):
        try:
            parse(text)
        except ValueError as err:
            assert str(err)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["VALUEDRIFT_PARTITIONS", "VALUEDRIFT_WINDOW_SECONDS", "VALUEDRIFT_BROKER",
                                        "VALUEDRIFT_Z_THRESHOLD", "VALUEDRIFT_MAX_LIVE_KEYS",
                                        "VALUEDRIFT_SECURITY_PROTOCOL", "VALUEDRIFT_SASL_MECHANISM"]),
                       st.text(max_size=12)))
def test_environment_settings_build_or_raise_value_error(env):
    try:
        Settings.from_env(env).alert_policy()
        KafkaSecurity.from_env(env)
    except ValueError as err:
        assert str(err)

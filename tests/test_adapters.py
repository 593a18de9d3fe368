"""Input adapters: own records, OpenAI chat completions, Human:/Assistant: transcripts, field maps."""

from __future__ import annotations

import contextlib
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from valuedrift.classifier.training_data import shared_data_dir
from valuedrift.streams.adapters import (
    FORMATS,
    AdapterConfig,
    AdapterError,
    FieldMap,
    adapt,
    adapt_bytes,
    load_map,
    parse_map,
    transcript_pairs,
)
from valuedrift.streams.core.records import ResponseEvent

T0 = 1767225600.0


def err_of(obj, cfg, fallback_id=None):
    with pytest.raises(AdapterError) as info:
        adapt(obj, cfg, fallback_id)
    return str(info.value)


# ---------------------------------------------------------------- own


def test_own_record_round_trips():
    ev = ResponseEvent(id="r1", monitor_key="m", event_time=T0, prompt="p", response="r", metadata={"x": 1})
    assert adapt(json.loads(ev.to_bytes()), AdapterConfig("own")) == [ev]


def test_own_record_from_csv_strings_and_defaults():
    row = {"id": "r1", "event_time": "1767225600", "prompt": "p", "response": "r", "metadata": ""}
    [ev] = adapt(row, AdapterConfig("own", default_key="fallback"))
    assert (ev.monitor_key, ev.event_time, ev.metadata) == ("fallback", T0, {})


@pytest.mark.parametrize("obj, field", [
    ({"monitor_key": "m", "event_time": T0, "prompt": "p", "response": "r"}, "id"),
    ({"id": "r", "event_time": T0, "prompt": "p", "response": "r"}, "monitor_key"),
    ({"id": "r", "monitor_key": "m", "event_time": "yesterday", "prompt": "p", "response": "r"}, "event_time"),
    ({"id": "r", "monitor_key": "m", "event_time": 1767225600000, "prompt": "p", "response": "r"}, "event_time"),
    ({"id": "r", "monitor_key": "m", "event_time": T0, "prompt": 3, "response": "r"}, "prompt"),
    ({"id": "r", "monitor_key": "m", "event_time": T0, "prompt": "p", "response": "r", "schema_version": 2},
     "schema_version"),
    ([1, 2], "record"),
])
def test_own_errors_name_the_field(obj, field):
    assert err_of(obj, AdapterConfig("own")).startswith(field)


# ---------------------------------------------------------------- openai

COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1767225600, "model": "gpt-x",
    "messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Tell me a joke"}],
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Why did the chicken..."}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": [{"type": "text", "text": "Knock"},
                                                                   {"type": "text", "text": "knock"}]}},
    ],
}


def test_openai_each_choice_is_one_event():
    evs = adapt(COMPLETION, AdapterConfig("openai"))
    assert [e.id for e in evs] == ["chatcmpl-1#0", "chatcmpl-1#1"]
    assert {e.prompt for e in evs} == {"Tell me a joke"}
    assert [e.response for e in evs] == ["Why did the chicken...", "Knock\nknock"]
    assert evs[0].monitor_key == "gpt-x" and evs[0].event_time == T0 and evs[0].metadata == {"finish_reason": "stop"}


def test_openai_batch_output_and_request_shapes():
    line = {"custom_id": "req-7", "request": {"messages": [{"role": "user", "content": "Q"}]},
            "response": {"body": {"id": "cmpl-7", "created": T0, "model": "m",
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}}]}}}
    [ev] = adapt(line, AdapterConfig("openai"))
    assert (ev.id, ev.monitor_key, ev.prompt, ev.response) == ("cmpl-7#0", "m", "Q", "A")


def test_openai_messages_ending_with_the_assistant():
    rec = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                        {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}],
           "deployment": {"name": "prod"}, "ts": "2026-01-01T00:00:00Z"}
    cfg = AdapterConfig("openai", parse_map("monitor_key=deployment.name,event_time=ts"))
    [ev] = adapt(rec, cfg, "chat.jsonl:3")
    assert (ev.id, ev.monitor_key, ev.event_time, ev.prompt, ev.response) == ("chat.jsonl:3", "prod", T0, "c", "d")


def test_context_turns_append_the_earlier_turns_most_recent_first():
    from valuedrift.classifier.context import MARK

    rec = {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "a"},
                        {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
                        {"role": "assistant", "content": "d"}], "id": "c1", "model": "m", "created": T0}
    [ev] = adapt(rec, AdapterConfig("openai", context_turns=1))
    assert ev.prompt == f"c\n\n{MARK} Assistant: b" and ev.response == "d"
    [ev] = adapt(rec, AdapterConfig("openai", context_turns=5))  # the system message is not a turn
    assert ev.prompt == f"c\n\n{MARK} Assistant: b | Human: a"
    text = ("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: " + "x" * 400
            + "\n\nHuman: so?\n\nAssistant: ok")
    cfg = AdapterConfig("transcript", default_key="k", default_time=T0, context_turns=3)
    first, second, third = adapt({"id": "d", "transcript": text}, cfg)
    assert first.prompt == "hi" and second.prompt == f"how?\n\n{MARK} Assistant: hello | Human: hi"
    assert third.prompt == f"so?\n\n{MARK} Assistant: {'x' * 300} | Human: how? | Assistant: hello"
    assert [e.prompt for e in adapt({"id": "d", "transcript": text}, AdapterConfig("transcript", default_key="k",
                                    default_time=T0))] == ["hi", "how?", "so?"]
    for bad in (-1, 1.5, True):
        with pytest.raises(AdapterError, match="context_turns"):
            AdapterConfig("transcript", context_turns=bad)


@pytest.mark.parametrize("change, field", [
    (lambda r: r.pop("messages"), "messages"),
    (lambda r: r.update(messages=[{"role": "system", "content": "x"}]), "messages"),
    (lambda r: r.update(choices="nope"), "choices"),
    (lambda r: r.update(choices=[]), "choices"),
    (lambda r: r.update(choices=[{"index": 0}]), "choices"),
    (lambda r: r.pop("model"), "monitor_key"),
    (lambda r: r.pop("created"), "event_time"),
    (lambda r: r.update(created=True), "event_time"),
])
def test_openai_errors_name_the_field(change, field):
    rec = json.loads(json.dumps(COMPLETION))
    change(rec)
    assert err_of(rec, AdapterConfig("openai")).startswith(field)


# ---------------------------------------------------------------- transcripts


def test_transcript_multi_turn_ids_and_pairs():
    text = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: like this"
    evs = adapt({"id": "t9", "transcript": text, "monitor_key": "k", "event_time": T0}, AdapterConfig("transcript"))
    assert [(e.id, e.prompt, e.response) for e in evs] == [("t9#1", "hi", "hello"), ("t9#2", "how?", "like this")]


def test_transcript_as_a_plain_string_with_single_newlines():
    cfg = AdapterConfig("transcript", default_key="k", default_time=T0)
    evs = adapt("Human: a\nmore of a\nAssistant: b\nHuman: c\nAssistant: d", cfg, "f.jsonl:1")
    assert [(e.id, e.prompt, e.response) for e in evs] == [("f.jsonl:1#1", "a\nmore of a", "b"),
                                                           ("f.jsonl:1#2", "c", "d")]


def test_transcript_without_a_pair_is_rejected():
    cfg = AdapterConfig("transcript", default_key="k", default_time=T0)
    assert err_of({"transcript": "Human: only a question"}, cfg, "x").startswith("transcript")
    assert err_of({"text": "Human: q\nAssistant: a"}, cfg, "x").startswith("transcript: no value at 'transcript'")


# ---------------------------------------------------------------- mapped


def test_mapped_dotted_paths_list_indexes_and_dotted_keys():
    rec = {"meta": {"uuid": "u1", "tenant": "acme"}, "log.time": "2026-01-01T00:00:00Z",
           "turns": [{"text": "q"}, {"text": "a"}]}
    cfg = AdapterConfig("mapped", parse_map("id=meta.uuid,monitor_key=meta.tenant,event_time=log.time,"
                                            "prompt=turns.0.text,response=turns.-1.text"))
    [ev] = adapt(rec, cfg)
    assert (ev.id, ev.monitor_key, ev.event_time, ev.prompt, ev.response) == ("u1", "acme", T0, "q", "a")


@pytest.mark.parametrize("rec, field", [
    ({"q": "x", "a": ["not", "text"], "k": "m", "t": T0}, "response: expected a string at 'a', got list"),
    ({"q": "x", "k": "m", "t": T0}, "response: no value at 'a'"),
    ({"q": "x", "a": "y", "k": {"x": 1}, "t": T0}, "monitor_key: expected a string at 'k', got object"),
    ({"q": "x", "a": "y", "k": "m", "t": [1]}, "event_time"),
    ({"q": "x", "a": "y", "k": "", "t": T0}, "monitor_key"),
])
def test_mapped_errors_name_the_field(rec, field):
    cfg = AdapterConfig("mapped", parse_map("prompt=q,response=a,monitor_key=k,event_time=t"))
    assert err_of(rec, cfg, "f:1").startswith(field)


def test_maps_from_text_json_and_toml(tmp_path):
    (tmp_path / "m.json").write_text('{"prompt": "a.b", "response": "c"}')
    (tmp_path / "m.toml").write_text('prompt = "a.b"\nresponse = "c"\n')
    assert load_map(tmp_path / "m.json") == load_map(tmp_path / "m.toml") == parse_map("prompt=a.b, response=c")
    assert parse_map("prompt=x").merged(parse_map("response=y")).as_dict() == {"prompt": "x", "response": "y"}
    for bad, fragment in (("promt=x", "unknown field 'promt'"), ("prompt", "is not FIELD=PATH")):
        with pytest.raises(AdapterError, match=fragment):
            parse_map(bad)
    (tmp_path / "bad.toml").write_text("prompt = ")
    with pytest.raises(AdapterError, match="not valid TOML"):
        load_map(tmp_path / "bad.toml")
    with pytest.raises(AdapterError, match="mapped format needs prompt"):
        AdapterConfig("mapped", parse_map("prompt=x"))
    with pytest.raises(AdapterError, match="unknown input format"):
        AdapterConfig("xml")


# ---------------------------------------------------------------- real transcripts: hh-rlhf


@pytest.fixture(scope="module")
def hh_lines():
    path = shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    if not path.exists():
        pytest.skip(f"hh-rlhf data not found at {path} (set VALUEDRIFT_SHARED_DATA to the shared data folder)")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def test_every_hh_rlhf_transcript_maps_and_agrees_with_the_labelling_parser(hh_lines):
    from valuedrift.classifier.transcripts import last_exchange as last_pair
    from valuedrift.classifier.transcripts import split_turns as turns

    cfg = AdapterConfig("transcript", FieldMap(transcript="chosen"), default_key="hh-chosen", default_time=T0)
    ids = set()
    n = 0
    for i, line in enumerate(hh_lines):
        evs = adapt_bytes(line, cfg, f"hh:{i}")
        text = json.loads(line)["chosen"]
        ts = turns(text)
        assert len(evs) == sum(1 for j, (s, _) in enumerate(ts) if s == "Assistant" and any(
            p == "Human" for p, _ in ts[:j]))
        last = last_pair(text)
        assert last is not None and (last[0], last[1]) in [(e.prompt, e.response) for e in evs]
        ids.update(e.id for e in evs)
        n += len(evs)
    assert len(hh_lines) == 2312 and len(ids) == n > 2 * len(hh_lines)


def test_hh_rlhf_multi_turn_ids(hh_lines):
    evs = adapt_bytes(hh_lines[0], AdapterConfig("transcript", FieldMap(transcript="rejected"), "k", T0), "hh:0")
    assert [e.id for e in evs] == [f"hh:0#{n}" for n in range(1, len(evs) + 1)]


# ---------------------------------------------------------------- never anything but AdapterError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
field_names = st.sampled_from(["id", "monitor_key", "event_time", "prompt", "response", "transcript", "messages",
                               "choices", "created", "model", "chosen", "0", "-1", "a.b", "messages.-1.content"])
near_valid = st.dictionaries(field_names, json_values | st.text(max_size=40).map(lambda s: "Human: q\nAssistant: " + s)
                             | st.just(COMPLETION["messages"]) | st.just(COMPLETION["choices"]) | st.just(T0),
                             max_size=8)
maps = st.dictionaries(st.sampled_from(["id", "monitor_key", "event_time", "prompt", "response", "transcript"]),
                       field_names, max_size=4).map(lambda d: FieldMap(**d))


def _check(obj, fmt, fmap, key, t, fallback):
    try:
        cfg = AdapterConfig(fmt, fmap, key, t)
    except AdapterError:
        return
    try:
        out = adapt(obj, cfg, fallback)
    except AdapterError as err:
        assert str(err).split(":")[0] in ("id", "monitor_key", "event_time", "prompt", "response", "transcript",
                                          "messages", "choices", "record", "metadata", "schema_version")
        return
    assert isinstance(out, list) and out and all(isinstance(e, ResponseEvent) for e in out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=json_values | near_valid, fmt=st.sampled_from(FORMATS), fmap=maps,
       key=st.none() | st.text(max_size=5), t=st.none() | st.floats(allow_nan=True), fallback=st.none() | st.text())
def test_adapters_raise_only_adapter_error_on_any_json(obj, fmt, fmap, key, t, fallback):
    _check(obj, fmt, fmap, key, t, fallback)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=60) | st.text(max_size=60), fmt=st.sampled_from(FORMATS))
def test_adapt_bytes_raises_only_adapter_error(raw, fmt):
    cfg = AdapterConfig(fmt, FieldMap(prompt="p", response="r") if fmt == "mapped" else FieldMap(), "k", T0)
    with contextlib.suppress(AdapterError):
        adapt_bytes(raw, cfg, "x")


def test_adapters_survive_pathological_values():
    cfg = AdapterConfig("own")
    for bad_time in (10**400, float("inf"), "1e400", "NaN", -1, ""):
        assert err_of({"id": "r", "monitor_key": "m", "event_time": bad_time, "prompt": "p", "response": "r"},
                      cfg).startswith("event_time")
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(AdapterError, match="record"):
        adapt_bytes(deep, cfg)
    assert transcript_pairs("") == []


# ---------------------------------------------------------------- and map what they should

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r:"), max_size=30)
events = st.builds(ResponseEvent, id=st.text(min_size=1, max_size=20), monitor_key=st.text(min_size=1, max_size=20),
                   event_time=st.floats(min_value=T0, max_value=T0 + 1e8), prompt=st.text(), response=st.text(),
                   metadata=st.dictionaries(st.text(max_size=5), st.none() | st.booleans() | st.integers()
                                            | st.text(max_size=5), max_size=3))


@settings(max_examples=200, deadline=None)
@given(ev=events)
def test_own_records_round_trip(ev):
    assert adapt(json.loads(ev.to_bytes()), AdapterConfig("own")) == [ev]


@settings(max_examples=200, deadline=None)
@given(turns=st.lists(st.tuples(st.sampled_from(["Human", "Assistant"]), texts), max_size=8),
       blank=st.booleans())
def test_transcripts_pair_every_answered_assistant_turn(turns, blank):
    text = ("\n\n" if blank else "\n").join(f"{s}: {t}" for s, t in turns)
    if blank:
        text = "\n\n" + text
    expected, human = [], None
    for s, t in turns:
        if s == "Human":
            human = t.strip()
        elif human is not None:
            expected.append((human, t.strip()))
    cfg = AdapterConfig("transcript", default_key="k", default_time=T0)
    if not expected:
        with pytest.raises(AdapterError, match="^transcript"):
            adapt(text, cfg, "x")
        return
    evs = adapt(text, cfg, "x")
    assert [(e.prompt, e.response) for e in evs] == expected
    assert [e.id for e in evs] == [f"x#{n}" for n in range(1, len(expected) + 1)]


@settings(max_examples=200, deadline=None)
@given(prompt=st.text(), answers=st.lists(st.text(), min_size=1, max_size=4), rid=st.text(min_size=1, max_size=10))
def test_openai_maps_every_choice(prompt, answers, rid):
    rec = {"id": rid, "model": "m", "created": T0, "messages": [{"role": "user", "content": prompt}],
           "choices": [{"index": i, "message": {"role": "assistant", "content": a}} for i, a in enumerate(answers)]}
    evs = adapt(json.loads(json.dumps(rec)), AdapterConfig("openai"))
    assert [(e.id, e.prompt, e.response) for e in evs] == [(f"{rid}#{i}", prompt, a) for i, a in enumerate(answers)]

"""Hostile input through the real worker on the real broker: every malformed message is dead-lettered with
its reason, the valid ones give exactly the results they give alone, and the worker stays up."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random

import pytest
from aiokafka import AIOKafkaProducer
from valuedrift.classifier.rules import RuleClassifier
from valuedrift.ops.kafka import ensure_topics, read_topic
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.core.records import ClassifiedResponse, DeadLetter, ResponseEvent, WindowStatistic, pack_lines
from valuedrift.streams.offline import run_offline

from tests.helpers import T0, comparable, ev, scenario, windows_of
from tests.texts import PAIRS

pytestmark = pytest.mark.integration


def malformed(n: int, seed: int = 0) -> list[tuple[bytes, str]]:
    """n malformed message values, each with a fragment its dead-letter reason must contain."""
    rng = random.Random(seed)
    good = {"id": "x", "monitor_key": "alpha", "event_time": T0 + 1, "prompt": "p", "response": "r"}

    def with_(**changes):
        return json.dumps({**good, **changes}).encode()

    def without(field):
        return json.dumps({k: v for k, v in good.items() if k != field}).encode()

    makers = [
        lambda i: (b"{not json " + str(i).encode(), "Invalid JSON"),
        lambda i: (b"", "empty message"),
        lambda i: (b"\xff\xfe\xfa" + bytes(rng.randrange(256) for _ in range(20)), "not UTF-8 text"),
        lambda i: (json.dumps([1, 2, i]).encode(), "invalid response event"),
        lambda i: (json.dumps(i).encode(), "invalid response event"),
        lambda i: (with_(id=i), "id"),
        lambda i: (with_(event_time={"t": i}), "event_time"),
        lambda i: (with_(prompt=None), "prompt"),
        lambda i: (with_(monitor_key=""), "monitor_key"),
        lambda i: (with_(monitor_key="k" * 300), "monitor_key"),
        lambda i: (with_(metadata=[i]), "metadata"),
        lambda i: (without(rng.choice(["id", "monitor_key", "event_time", "prompt", "response"])), "Field required"),
        lambda i: (good_bytes(good).replace(b'"event_time": ' + str(T0 + 1).encode(), b'"event_time": NaN'),
                   "event_time"),
        lambda i: (with_(event_time=1e15), "outside 2000-01-01"),
        lambda i: (with_(event_time=-1e9), "outside 2000-01-01"),
        lambda i: (with_(event_time="yesterday"), "event_time"),
        lambda i: (with_(schema_version=99), "schema_version"),
    ]
    return [makers[i % len(makers)](i) for i in range(n)]


def good_bytes(d: dict) -> bytes:
    return json.dumps(d).encode()


async def send_raw(broker, topic: str, values: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, max_batch_size=1, linger_ms=0,
                                max_request_size=12 * 1024 * 1024, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def test_ten_thousand_malformed_messages_are_dead_lettered_and_change_nothing(settings, tmp_path):
    settings = settings.replace(idle_close_seconds=8.0, max_message_bytes=1_000_000)
    asyncio.run(ensure_topics(settings))
    rng = random.Random(5)
    valid = scenario(seed=21)
    # hundreds of distinct monitor keys, one event each: valid, so they must be windowed, not dropped
    many = [ResponseEvent(id=f"spam-{i}", monitor_key=f"tenant-{i:04d}", event_time=T0 + 30, prompt="p",
                          response=PAIRS["g1"][1]) for i in range(300)]
    bad = malformed(10_000)
    huge = [(json.dumps({"id": f"huge-{i}", "monitor_key": "alpha", "event_time": T0 + 2, "prompt": "p",
                         "response": "x" * 10_000_000}).encode(), "exceeds max_message_bytes") for i in range(2)]
    bad += huge
    messages = [(e.monitor_key.encode(), e.to_bytes(), None) for e in valid + many]
    messages += [(None, v, why) for v, why in bad]
    rng.shuffle(messages)
    # keep each key's valid events in event-time order (the live/offline comparison assumes per-key order)
    order = iter(sorted((m for m in messages if m[2] is None), key=lambda m: json.loads(m[1])["event_time"]))
    messages = [next(order) if m[2] is None else m for m in messages]
    expected = run_offline(valid + many, RuleClassifier(), settings)
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        asyncio.run(send_raw(settings.broker, settings.topics.responses, [(k, v) for k, v, _ in messages]))
        live = windows_of(settings, expect=len(expected.windows), timeout=240)
        raw = asyncio.run(read_topic(settings.broker, settings.topics.deadletter, expect=len(bad), timeout=120))
        assert worker.running, worker.log_tail()
    dls = [DeadLetter.parse_bytes(r) for r in raw]
    assert len(dls) == len(bad)
    by_sha: dict[str, list[DeadLetter]] = {}
    for d in dls:
        by_sha.setdefault(d.payload_sha256, []).append(d)
    for value, why in bad:  # every malformed message is there, with a reason naming the problem
        d = by_sha[hashlib.sha256(value).hexdigest()][0]
        assert why in d.reason, (value[:80], d.reason)
        assert d.payload_bytes == len(value) and d.stage == "classify"
        if not d.truncated:
            assert base64.b64decode(d.payload_b64) == value
    assert sum(d.truncated for d in dls) == 2
    assert comparable(live) == comparable(expected.windows)


def test_the_live_key_limit_dead_letters_the_events_of_further_keys(settings, tmp_path):
    settings = settings.replace(partitions=1, max_live_keys=3, idle_close_seconds=4.0)
    asyncio.run(ensure_topics(settings))
    events = [ev(i, f"key-{i}", 10 + i, "g1") for i in range(8)]
    asyncio.run(send_raw(settings.broker, settings.topics.responses,
                         [(e.monitor_key.encode(), e.to_bytes()) for e in events]))
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        ws = windows_of(settings, expect=3)
        dls = [DeadLetter.parse_bytes(r) for r in asyncio.run(
            read_topic(settings.broker, settings.topics.deadletter, expect=5, timeout=60))]
        assert worker.running
    assert sorted(w.monitor_key for w in ws) == ["key-0", "key-1", "key-2"]
    assert all(isinstance(w, WindowStatistic) and w.n == 1 for w in ws)
    assert len(dls) == 5 and all("max_live_keys=3" in d.reason and d.stage == "windows" for d in dls)


def test_a_bad_line_in_a_packed_classified_message_is_dead_lettered_alone(settings, tmp_path):
    """The classify stage packs a key's records into one message as JSON Lines; the window stage takes
    each line on its own: a bad line is dead-lettered with its position, the others are counted."""
    settings = settings.replace(partitions=1, idle_close_seconds=4.0)
    asyncio.run(ensure_topics(settings))

    def classified(i: int, code: str) -> bytes:
        return ClassifiedResponse(id=f"c{i}", monitor_key="alpha", event_time=T0 + 5 + i, category=code,
                                  probs={code: 1.0}, model_version="test", source_partition=0,
                                  source_offset=i).to_bytes()

    bad_json, bad_code = b'{"id": "c9", "monitor_key": ', classified(3, "g1").replace(b'"g1"', b'"zz"')
    packed = pack_lines([classified(0, "g1"), bad_json, classified(1, "g2"), bad_code, classified(2, "g2")])
    assert len(packed) == 1
    asyncio.run(send_raw(settings.broker, settings.topics.classified, [(b"alpha", packed[0])]))
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        ws = windows_of(settings, expect=1)
        dls = [DeadLetter.parse_bytes(r) for r in asyncio.run(
            read_topic(settings.broker, settings.topics.deadletter, expect=2, timeout=60))]
        assert worker.running
    assert [(w.n, w.counts["g1"], w.counts["g2"]) for w in ws] == [(3, 1, 2)]
    reasons = sorted(d.reason for d in dls)
    assert reasons[0].startswith("category 'zz' (line 4 of 5) is not in taxonomy")
    assert reasons[1].startswith("invalid classified record (line 2 of 5): ")
    assert sorted(base64.b64decode(d.payload_b64) for d in dls) == sorted([bad_json, bad_code])
    assert all(d.stage == "windows" for d in dls)

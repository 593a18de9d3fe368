"""``valuedrift bench stream``: events per second through Kafka, the pipeline and the classifier, in one run.

All on one embedded broker (loopback), with the same seeded events:

- ``raw_kafka_eps``: an aiokafka consumer → producer loop that copies the events to another topic, with the
  same client settings as the pipeline (the ceiling Kafka I/O puts on any pipeline here);
- ``null_pipeline_eps``: the real worker with the free ``null`` classifier: the pipeline's own overhead;
- ``classifier_alone_eps``: the default classifier on the same pairs in-process, in the worker's batch size;
- ``pipeline_eps``: the real worker with the default classifier;
- ``efficiency`` = pipeline_eps / classifier_alone_eps.

Worker rates count from the first to the last classified record's broker timestamp, with the input already
waiting in the topic (a backlog), so the worker's start-up time is not counted.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ops.broker import EmbeddedBroker
from ops.kafka import ensure_topics, send_all
from ops.scenario import demo_events
from ops.worker_process import WorkerProcess
from streams.kafka_config import consumer_config, producer_config
from streams.records import ResponseEvent, is_tick
from streams.settings import BrokerURL, Settings


def _events(n: int, seed: int) -> list[ResponseEvent]:
    per_window = 100
    evs = list(demo_events(windows=n // (2 * per_window) + 1, per_window=per_window, seed=seed))
    return evs[:n]


async def _raw_copy(settings: Settings, source: str, target: str, n: int) -> float:
    consumer = AIOKafkaConsumer(source, **consumer_config(settings, "bench-raw"))
    producer = AIOKafkaProducer(**producer_config(settings.broker))
    await consumer.start()
    await producer.start()
    try:
        done, t0 = 0, None
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.batch_size)
            msgs = [m for part in batch.values() for m in part]
            if not msgs:
                continue
            t0 = t0 or time.perf_counter()
            futures = [await producer.send(target, key=m.key, value=m.value) for m in msgs]
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(msgs)
        return n / (time.perf_counter() - (t0 or time.perf_counter()))
    finally:
        await consumer.stop()
        await producer.stop()


async def _classified_rate(settings: Settings, n: int, timeout: float) -> float:
    """Wait until n classified records exist; return n over the span of their broker timestamps."""
    consumer = AIOKafkaConsumer(settings.topics.classified, **settings.broker.client_options(),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        stamps: list[int] = []
        deadline = time.monotonic() + timeout
        while len(stamps) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            stamps += [m.timestamp for part in batch.values() for m in part if not is_tick(m.value)]
        if len(stamps) < n:
            raise TimeoutError(f"only {len(stamps)} of {n} events were classified in {timeout:.0f} s")
        span = (max(stamps) - min(stamps)) / 1000
        return (len(stamps) - 1) / span if span > 0 else float("inf")
    finally:
        await consumer.stop()


def _pipeline(base: Settings, name: str, classifier: str, events: list[ResponseEvent], workdir: Path,
              timeout: float) -> float:
    settings = base.replace(app_id=f"bench-{name}", topic_prefix=f"bench-{name}.", classifier=classifier,
                            datadir=workdir / name)
    asyncio.run(ensure_topics(settings))
    asyncio.run(send_all(settings.broker, settings.topics.responses,
                         [(e.monitor_key.encode(), e.to_bytes()) for e in events]))
    with WorkerProcess(settings, workdir / f"{name}.log") as worker:
        try:
            return asyncio.run(_classified_rate(settings, len(events), timeout))
        except TimeoutError as err:
            raise RuntimeError(f"{err}; worker log:\n{worker.log_tail()}") from None


def _classifier_alone(events: list[ResponseEvent], batch_size: int) -> float:
    from classifier.loading import load_classifier

    clf = load_classifier("default")
    clf.predict_proba([events[0].prompt], [events[0].response])  # warm-up
    t0 = time.perf_counter()
    for s in range(0, len(events), batch_size):
        chunk = events[s: s + batch_size]
        clf.predict_proba([e.prompt for e in chunk], [e.response for e in chunk])
    return len(events) / (time.perf_counter() - t0)


def run_bench(n_null: int = 5000, n_real: int = 1200, seed: int = 0, partitions: int = 4,
              timeout: float = 300.0) -> dict[str, Any]:
    from classifier.default_model import ensure_default_model

    ensure_default_model()
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="valuedrift-bench-") as tmp:
        work = Path(tmp)
        base = Settings(broker=BrokerURL.parse(broker.url), partitions=partitions, idle_close_seconds=0,
                        lateness_seconds=0, window_seconds=60, log_level="WARNING")
        events = _events(max(n_null, n_real), seed)
        raw = base.replace(topic_prefix="bench-raw.")
        asyncio.run(ensure_topics(raw))
        asyncio.run(send_all(raw.broker, raw.topics.responses, [(e.monitor_key.encode(), e.to_bytes())
                                                                for e in events[:n_null]]))
        raw_eps = asyncio.run(_raw_copy(raw, raw.topics.responses, raw.topics.classified, n_null))
        null_eps = _pipeline(base, "null", "null", events[:n_null], work, timeout)
        alone = _classifier_alone(events[:n_real], base.batch_size)
        real_eps = _pipeline(base, "default", "default", events[:n_real], work, timeout)
    return {"raw_kafka_eps": round(raw_eps, 1), "null_pipeline_eps": round(null_eps, 1),
            "classifier_alone_eps": round(alone, 1), "pipeline_eps": round(real_eps, 1),
            "efficiency": round(real_eps / alone, 3),
            "events": {"null": n_null, "real": n_real}, "partitions": partitions, "batch_size": base.batch_size,
            "broker": "embedded (tansu, one record per producer batch)"}

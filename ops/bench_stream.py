"""``valuedrift bench stream``: events per second through Kafka, the pipeline and the classifier, in one run.

All on one embedded broker (loopback), with the same seeded events:

- ``raw_kafka_eps``: an aiokafka consumer → producer loop that copies the events to another topic, with the
  same client settings as the pipeline (the ceiling Kafka I/O puts on any pipeline here);
- ``null_pipeline_eps``: the real worker with the free ``null`` classifier: the pipeline's own overhead;
- ``classifier_alone_eps``: the default classifier on the same pairs in-process, in the worker's batch size
  (median of ``rounds + 1`` runs, one before and one after each pipeline run);
- ``pipeline_eps``: the real worker with the default classifier (median of ``rounds`` runs);
- ``efficiency``: median over the rounds of a pipeline run's rate over the mean of the two classifier-alone
  runs beside it (``efficiency_runs`` lists them).

Worker rates are end to end, from input to window statistic, on a warm worker: once the started worker has
classified one warm-up event, the events are sent at once, followed by one event per monitor key a window
later, which closes every window the events fell in; the rate is the events over the time from the send to
the last of those windows' statistics (broker timestamp). The worker's start-up is not counted; both of
its stages are.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner
from valuedrift.classifier.base import Classifier
from valuedrift.ops.broker import EmbeddedBroker
from valuedrift.ops.kafka import ensure_topics, make_producer, send_all
from valuedrift.ops.scenario import demo_events
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.core.records import ResponseEvent, WindowStatistic, is_tick
from valuedrift.streams.settings import BrokerURL, Settings
from valuedrift.streams.worker.gc_tuning import tune_gc
from valuedrift.streams.worker.kafka_config import consumer_config, producer_config


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
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.poll_batch_size)
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


def _flush_events(events: list[ResponseEvent], window_seconds: float) -> list[ResponseEvent]:
    """One event per monitor key, a window after the last event, so every window of ``events`` closes."""
    later = max(e.event_time for e in events) + 2 * window_seconds
    firsts = {e.monitor_key: e for e in events}
    return [e.model_copy(update={"id": f"{e.id}-flush", "event_time": later}) for e in firsts.values()]


def _window_count(events: list[ResponseEvent], window_seconds: float) -> int:
    size_ms = int(window_seconds * 1000)
    return len({(e.monitor_key, int(e.event_time * 1000) // size_ms) for e in events})


async def _records(consumer: AIOKafkaConsumer, done: Callable[[list[ConsumerRecord]], bool], what: str,
                   deadline: float) -> list[ConsumerRecord]:
    records: list[ConsumerRecord] = []
    while not done(records):
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(records)} {what} in time")
        batch = await consumer.getmany(timeout_ms=200, max_records=5000)
        records += [m for part in batch.values() for m in part if not is_tick(m.value)]
    return records


def _windows_of(records: list[ConsumerRecord]) -> set[tuple[str, float]]:
    stats = (WindowStatistic.parse_bytes(m.value) for m in records)
    return {(st.monitor_key, st.window_start) for st in stats}


async def _send_batched(producer: AIOKafkaProducer, topic: str, payloads: list[tuple[bytes, bytes]]) -> None:
    """Send keyed messages as producer batches built here, one partition at a time (to the partition a
    plain ``send`` picks for the key): a fraction of the CPU of one ``send`` per message, which would
    otherwise compete with the worker for this machine's cores."""
    parts = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in payloads:
        by_partition.setdefault(partitioner(key, parts, parts), []).append((key, value))
    acks = []
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        acks.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*acks)


async def _pipeline_rate(settings: Settings, warm_up: ResponseEvent, inputs: list[ResponseEvent], windows: int,
                         timeout: float) -> float:
    """Warm the running worker up with one event, send ``inputs`` at once, wait until ``windows`` window
    statistics are out; return len(inputs) over the time from the send to the last statistic."""
    deadline = time.monotonic() + timeout
    opts = dict(**settings.broker.client_options(), enable_auto_commit=False, auto_offset_reset="earliest")
    classified = AIOKafkaConsumer(settings.topics.classified, **opts)
    entropy = AIOKafkaConsumer(settings.topics.entropy, **opts)
    producer = make_producer(settings.broker)
    await classified.start()
    await entropy.start()
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.responses, key=warm_up.monitor_key.encode(),
                                     value=warm_up.to_bytes())
        await _records(classified, lambda r: len(r) >= 1, "classified warm-up records", deadline)
        payloads = [(e.monitor_key.encode(), e.to_bytes()) for e in inputs]
        t0 = time.time()
        await _send_batched(producer, settings.topics.responses, payloads)
        stats = await _records(entropy, lambda r: len(_windows_of(r)) >= windows, "window statistics", deadline)
        span = max(m.timestamp for m in stats) / 1000 - t0
        return len(inputs) / span if span > 0 else float("inf")
    finally:
        await classified.stop()
        await entropy.stop()
        await producer.stop()


def _pipeline(base: Settings, name: str, classifier: str, events: list[ResponseEvent], workdir: Path,
              timeout: float) -> float:
    settings = base.replace(app_id=f"bench-{name}", topic_prefix=f"bench-{name}.", classifier=classifier,
                            datadir=workdir / name)
    asyncio.run(ensure_topics(settings))
    warm_up = events[0].model_copy(update={"id": "warm-up", "monitor_key": "bench-warm-up"})
    inputs = events + _flush_events(events, settings.window_seconds)
    with WorkerProcess(settings, workdir / f"{name}.log") as worker:
        try:
            return asyncio.run(_pipeline_rate(settings, warm_up, inputs,
                                              _window_count(events, settings.window_seconds), timeout))
        except TimeoutError as err:
            raise RuntimeError(f"{err}; worker log:\n{worker.log_tail()}") from None


def _classifier_alone(clf: Classifier, events: list[ResponseEvent], poll_batch_size: int) -> float:
    clf.predict_proba([events[0].prompt], [events[0].response])  # warm-up
    tune_gc()  # the worker's collector settings
    t0 = time.perf_counter()
    for s in range(0, len(events), poll_batch_size):
        chunk = events[s: s + poll_batch_size]
        clf.predict_proba([e.prompt for e in chunk], [e.response for e in chunk])
    return len(events) / (time.perf_counter() - t0)


def run_bench(n_null: int = 20000, n_real: int = 2400, seed: int = 0, partitions: int = 4,
              timeout: float = 300.0, rounds: int = 2) -> dict[str, Any]:
    from valuedrift.classifier.default_model import ensure_default_model
    from valuedrift.classifier.loading import load_classifier

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
        # The classifier alone runs before and after each pipeline run (alone, pipeline, alone, pipeline,
        # alone ...), and each run is compared with the mean of the two beside it: on shared CPUs whose
        # speed drifts by ±20 % within minutes, the efficiency of one round is noisy, their median less so.
        clf = load_classifier("default")  # one session for every classifier-alone run
        alone = [_classifier_alone(clf, events[:n_real], base.poll_batch_size)]
        piped = []
        for r in range(rounds):
            piped.append(_pipeline(base, f"default-{r}", "default", events[:n_real], work, timeout))
            alone.append(_classifier_alone(clf, events[:n_real], base.poll_batch_size))
    ratios = [p / ((alone[i] + alone[i + 1]) / 2) for i, p in enumerate(piped)]
    return {"raw_kafka_eps": round(raw_eps, 1), "null_pipeline_eps": round(null_eps, 1),
            "classifier_alone_eps": round(statistics.median(alone), 1),
            "pipeline_eps": round(statistics.median(piped), 1),
            "efficiency": round(statistics.median(ratios), 3),
            "classifier_alone_runs": [round(a, 1) for a in alone], "pipeline_runs": [round(p, 1) for p in piped],
            "efficiency_runs": [round(x, 3) for x in ratios],
            "events": {"null": n_null, "real": n_real}, "partitions": partitions,
            "poll_batch_size": base.poll_batch_size, "broker": "embedded (tansu)"}

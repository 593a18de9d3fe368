"""Stage 1, classify: raw input messages → validated, batched, classified records keyed by monitor key.

It runs its own aiokafka consumer and producer rather than a Faust agent: it
commits input offsets only after every classified record and dead letter of
the batch has been acknowledged by the broker, which gives at-least-once
delivery across crashes and rebalances. (Faust's ``take`` buffer was measured
to skip input messages when a worker restarts onto a backlog.) Redelivered
messages are recognised downstream by their input partition and offset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError
from valuedrift.classifier.base import Classifier
from valuedrift.streams.adapters import AdapterConfig, AdapterError, adapt_bytes
from valuedrift.streams.core.clock import DEFAULT_MAX_SKEW_SECONDS, ahead_reason
from valuedrift.streams.core.records import (
    ClassifiedResponse,
    DeadLetter,
    RecordError,
    ResponseEvent,
    message_problem,
    pack_lines,
)
from valuedrift.streams.settings import Settings
from valuedrift.streams.worker.kafka_config import consumer_config, producer_config
from valuedrift.streams.worker.metrics import WorkerMetrics

log = logging.getLogger("valuedrift.classify")


MAX_EVENTS_PER_MESSAGE = 1024  # events of one input message are told apart by index (dedupe after a crash)


def validate(msg: ConsumerRecord, max_bytes: int, adapter: AdapterConfig | None = None,
             max_skew: float = DEFAULT_MAX_SKEW_SECONDS) -> list[ResponseEvent] | str:
    """Return the response events of a message, or the reason the message is unusable.

    The project's own record gives one event; other formats (``valuedrift.streams.adapters``) may give several, and
    take the message's Kafka timestamp as event time when the record has none. An event more than ``max_skew``
    seconds ahead of the message's Kafka timestamp (of the time it is read, where the message has none) makes the
    message unusable: it would move its key's watermark (``valuedrift.streams.core.clock``).
    """
    events = _events(msg, max_bytes, adapter)
    if isinstance(events, str):
        return events
    reference = msg.timestamp / 1000 if msg.timestamp and msg.timestamp > 0 else time.time()
    for ev in events:
        reason = ahead_reason(ev.event_time, reference, max_skew)
        if reason is not None:
            return f"{ev.id}: {reason}"
    return events


def _events(msg: ConsumerRecord, max_bytes: int, adapter: AdapterConfig | None) -> list[ResponseEvent] | str:
    raw = msg.value
    problem = message_problem(raw, max_bytes)
    if problem is not None:
        return problem
    if adapter is None or adapter.format == "own":
        try:
            return [ResponseEvent.parse_bytes(raw)]
        except RecordError as err:
            return f"invalid response event: {err}"
    cfg = replace(adapter, default_time=msg.timestamp / 1000 if msg.timestamp and msg.timestamp > 0 else None)
    try:
        events = adapt_bytes(raw, cfg, fallback_id=f"{msg.topic}:{msg.partition}:{msg.offset}")
    except AdapterError as err:
        return f"invalid {adapter.format} record: {err}"
    if not events:
        return f"{adapter.format} record holds no (prompt, response) pair"
    if len(events) > MAX_EVENTS_PER_MESSAGE:
        return f"{adapter.format} record holds {len(events)} responses, more than {MAX_EVENTS_PER_MESSAGE}"
    return events


class ClassifyStage:
    """Consume up to ``poll_batch_size`` messages → validate → classify in one thread call → produce → commit."""

    def __init__(self, settings: Settings, classifier: Classifier, metrics: WorkerMetrics | None = None) -> None:
        self.settings = settings
        self.classifier = classifier
        self.metrics = metrics or WorkerMetrics()
        self.adapter = settings.adapter_config()
        self.topics = settings.topics
        self.consumer = AIOKafkaConsumer(self.topics.responses,
                                         **consumer_config(settings, f"{settings.app_id}-classify"))
        self.producer = AIOKafkaProducer(**producer_config(settings.broker))
        self.classified = 0
        self.dead_letters = 0

    async def run(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        try:
            while True:
                batch = await self.consumer.getmany(timeout_ms=int(self.settings.batch_within_seconds * 1000),
                                                    max_records=self.settings.poll_batch_size)
                msgs = [m for part in batch.values() for m in part]
                if msgs:
                    await self.process(msgs)
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def _classify(self, good: Sequence[tuple[ResponseEvent, ConsumerRecord, int]]) -> list[asyncio.Future]:
        """Classify a batch in a thread and send its records, packed per monitor key (``pack_lines``);
        return the send acknowledgements.

        One thread call per batch: each hand-over to the thread waits for the GIL (measured: calls of 64
        pairs held the null pipeline to 5,000 events/s, calls of 1,000 reached 20,000)."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        rechecked = getattr(self.classifier, "rechecked", 0)  # the ONNX int8 classifier counts its fp32 rechecks
        probs = await loop.run_in_executor(None, self.classifier.predict_proba,
                                           [e.prompt for e, _, _ in good], [e.response for e, _, _ in good])
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)
        self.metrics.rechecked.inc(getattr(self.classifier, "rechecked", 0) - rechecked)
        codes = self.classifier.taxonomy.codes
        by_key: dict[str, list[bytes]] = {}
        for (ev, m, index), row in zip(good, probs, strict=True):
            out = ClassifiedResponse.labelled(ev, row, codes, self.classifier.version, source_partition=m.partition,
                                              source_offset=m.offset, source_index=index)
            by_key.setdefault(ev.monitor_key, []).append(out.to_bytes())
        pending = [await self.producer.send(self.topics.classified, key=key.encode(), value=value)
                   for key, lines in by_key.items() for value in pack_lines(lines)]
        self.classified += len(good)
        self.metrics.classified.inc(len(good))
        return pending

    async def process(self, msgs: Sequence[ConsumerRecord]) -> None:
        m_ = self.metrics
        m_.events_in.inc(len(msgs))
        offsets: dict[TopicPartition, int] = {}  # next offset to read per partition: what gets committed
        for m in msgs:
            tp = TopicPartition(m.topic, m.partition)
            offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
        for tp, next_offset in offsets.items():
            hw = self.consumer.highwater(tp)
            if hw is not None:
                m_.lag.labels(partition=str(tp.partition)).set(max(hw - next_offset, 0))
        pending = []
        good: list[tuple[ResponseEvent, ConsumerRecord, int]] = []
        for m in msgs:
            result = validate(m, self.settings.max_message_bytes, self.adapter, self.settings.max_clock_skew_seconds)
            if isinstance(result, str):
                log.warning("dead letter from %s[%d]@%d: %s", m.topic, m.partition, m.offset, result)
                dl = DeadLetter.of(m.value, m.topic, m.partition, m.offset, "classify", result)
                pending.append(await self.producer.send(self.topics.deadletter, value=dl.to_bytes()))
                self.dead_letters += 1
                m_.dead_letters.labels(stage="classify").inc()
            else:
                good.extend((event, m, index) for index, event in enumerate(result))
        for start in range(0, len(good), self.settings.poll_batch_size):
            pending += await self._classify(good[start: start + self.settings.poll_batch_size])
        await asyncio.gather(*pending)
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as err:
            # The partitions moved to another worker, which will redo this batch; the window
            # stage skips the duplicates by input offset.
            log.warning("could not commit input offsets after a rebalance (%s); the batch will be redone", err)

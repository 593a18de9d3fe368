"""Thin aiokafka helpers: client settings (with the embedded broker's quirks), topic creation, tailing topics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from valuedrift.streams.settings import BrokerURL, Settings
from valuedrift.streams.worker.kafka_config import producer_config


class TopicMissingError(RuntimeError):
    """The topic to read does not exist on the broker."""


def make_producer(broker: BrokerURL) -> AIOKafkaProducer:
    return AIOKafkaProducer(**producer_config(broker))


async def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the pipeline's topics that do not exist yet; return the names created.

    The input topic is created only when it is the pipeline's own; an
    existing chat-log topic is used as it is.
    """
    topics = settings.topics
    wanted = [t for t in topics.all() if not (t == topics.responses and settings.input_topic)]
    admin = AIOKafkaAdminClient(**settings.broker.client_options(), request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(name=t, num_partitions=settings.partitions, replication_factor=1) for t in missing]
            )
        return missing
    finally:
        await admin.close()


async def read_topic(
    broker: BrokerURL, topic: str, *, expect: int | None = None, timeout: float = 30.0, idle: float | None = None
) -> list[bytes]:
    """Return every message value on a topic from the beginning (no consumer group); see ``read_records``."""
    return [value for _, _, value in await read_records(broker, topic, expect=expect, timeout=timeout, idle=idle)]


async def read_records(
    broker: BrokerURL, topic: str, *, expect: int | None = None, timeout: float = 30.0, idle: float | None = None,
    keep: Callable[[bytes], bool] | None = None,
) -> list[tuple[int, int, bytes]]:
    """Return (partition, offset, value) of every message on a topic from the beginning (no consumer group).

    Stops when ``expect`` messages were read, when nothing new arrived for
    ``idle`` seconds, or at ``timeout``. A missing topic raises TopicMissingError. With ``keep``, only the
    messages it accepts are returned and count as new: a running worker's idle-close ticks on its classified
    topic must not keep the reader waiting until ``timeout``.
    """
    consumer = AIOKafkaConsumer(**broker.client_options(), enable_auto_commit=False,
                                auto_offset_reset="earliest")
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()  # a consumer that failed to start still holds its client
        raise
    try:
        parts = await _partitions(consumer, topic)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[tuple[int, int, bytes]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = loop.time()
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = [(m.partition, m.offset, m.value or b"") for msgs in batch.values() for m in msgs
                   if keep is None or keep(m.value or b"")]
            if got:
                out.extend(got)
                last = loop.time()
            if expect is not None and len(out) >= expect:
                break
            if idle is not None and loop.time() - last > idle:
                break
        return out
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(50):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public API for this
        await asyncio.sleep(0.1)
    raise TopicMissingError(f"topic {topic!r} does not exist on the broker")


async def send_all(broker: BrokerURL, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Produce (key, value) messages and wait until all are acknowledged; return the count."""
    producer = make_producer(broker)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()

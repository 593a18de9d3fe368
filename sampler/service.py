"""Kafka I/O of the sampler: prompts → k samples per request → responses, and the probe scheduler's producer.

The service reads probe requests with its own aiokafka consumer (group ``<app id>-sampler``), generates
with a backend, produces the k response events and commits a request's input offset only after all of them
(or its dead letter) are acknowledged; requests finish out of order, so a partition's commit point is the
lowest offset still in flight (``valuedrift.sampler.offsets``). At most ``max_in_flight`` requests are in flight: when
full, the consumer pauses its partitions (it keeps polling, so it stays in the group), and a slow model
shows up as consumer lag in Kafka, not as memory. Under a crash the uncommitted requests are redone
(at-least-once); response ids are deterministic (``<request id>/<sample index>``) and, with the seed kept
in the request, so are the texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError
from valuedrift.sampler.backends import Backend, Generation
from valuedrift.sampler.events import parse_request, response_events
from valuedrift.sampler.metrics import SamplerMetrics
from valuedrift.sampler.offsets import OffsetTracker
from valuedrift.sampler.probe import ProbePlan, extend_history
from valuedrift.sampler.retry import GenerationError, RetryPolicy, backoff_delay
from valuedrift.sampler.seeding import fresh_seed
from valuedrift.streams.core.records import ChatMessage, DeadLetter, ProbeRequest, ResponseEvent
from valuedrift.streams.settings import Settings
from valuedrift.streams.worker.kafka_config import consumer_config, producer_config

log = logging.getLogger("valuedrift.sampler")

STAGE = "sampler"


@dataclass(frozen=True)
class ServiceConfig:
    max_in_flight: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress_seconds: float = 30.0
    drain_seconds: float = 30.0  # on a graceful stop, wait this long for requests in flight

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight}")


class _Revoked(ConsumerRebalanceListener):
    def __init__(self, tracker: OffsetTracker) -> None:
        self.tracker = tracker

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        self.tracker.forget(revoked)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        pass


class SamplerService:
    """Consume probe requests → generate (bounded, retried) → produce responses → commit."""

    def __init__(self, settings: Settings, backend: Backend, config: ServiceConfig | None = None,
                 metrics: SamplerMetrics | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.config = config or ServiceConfig()
        self.metrics = metrics or SamplerMetrics()
        self.topics = settings.topics
        self.tracker = OffsetTracker()
        self.consumer = AIOKafkaConsumer(**consumer_config(settings, f"{settings.app_id}-sampler"))
        self.producer = AIOKafkaProducer(**producer_config(settings.broker))
        self._tasks: set[asyncio.Task[None]] = set()
        self._slot = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._fatal: BaseException | None = None
        self.max_in_flight_seen = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or the task is cancelled); then drain what is in flight."""
        stop = stop or asyncio.Event()
        await self.backend.start()
        try:
            await self.producer.start()
            try:
                self.consumer.subscribe([self.topics.prompts], listener=_Revoked(self.tracker))
                await self.consumer.start()
                progress = asyncio.create_task(self._progress())
                try:
                    await self._loop(stop)
                finally:
                    progress.cancel()
                    await self._drain()
                    await self.consumer.stop()
            finally:
                await self.producer.stop()
        finally:
            await self.backend.close()
            log.info(self.metrics.progress_line())
        if self._fatal is not None:
            raise self._fatal

    async def _loop(self, stop: asyncio.Event) -> None:
        paused = False
        while not stop.is_set() and self._fatal is None:
            free = self.config.max_in_flight - len(self._tasks)
            if free <= 0:
                if not paused:
                    self.consumer.pause(*self.consumer.assignment())
                    paused = True
                # keep polling (a consumer that stops polling leaves the group); paused partitions return nothing
                stray = await self.consumer.getmany(timeout_ms=0, max_records=1)
                for tp, msgs in stray.items():  # a partition assigned meanwhile, not paused yet: fetch it later
                    self.consumer.seek(tp, msgs[0].offset)
                    self.consumer.pause(tp)
                self._slot.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot.wait(), timeout=0.5)
                continue
            if paused:
                self.consumer.resume(*self.consumer.paused())
                paused = False
            batch = await self.consumer.getmany(timeout_ms=200, max_records=free)
            for msgs in batch.values():
                for m in msgs:
                    self._accept(m)

    def _accept(self, m: ConsumerRecord) -> None:
        self.tracker.start(TopicPartition(m.topic, m.partition), m.offset)
        task = asyncio.create_task(self._handle(m))
        self._tasks.add(task)
        self.max_in_flight_seen = max(self.max_in_flight_seen, len(self._tasks))
        self.metrics.set_in_flight(len(self._tasks))
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.metrics.set_in_flight(len(self._tasks))
        self._slot.set()
        if not task.cancelled() and task.exception() is not None and self._fatal is None:
            self._fatal = task.exception()
            log.error("sampler stopping: %s", self._fatal)

    async def _handle(self, m: ConsumerRecord) -> None:
        tp = TopicPartition(m.topic, m.partition)
        req, reason = parse_request(m.value, self.settings.max_message_bytes)
        if req is None:
            await self._dead_letter(m, reason or "unusable message")
        else:
            if req.seed is None:
                req = req.model_copy(update={"seed": fresh_seed()})
            t0 = time.monotonic()
            gen, error = await self._generate(req)
            if gen is None:
                await self._dead_letter(m, error or "generation failed")
            else:
                events = response_events(req, gen.samples, backend=self.backend.name, model=self.backend.model)
                await self._produce(events)
                self.metrics.request_done(len(events), gen.tokens, time.monotonic() - t0)
        await self._commit(tp, m.offset)

    async def _generate(self, req: ProbeRequest) -> tuple[Generation | None, str | None]:
        policy = self.config.retry
        failures = 0
        while True:
            retry_after = None
            try:
                gen = await self.backend.generate(req)
                if len(gen.samples) != req.k:
                    raise GenerationError(f"the backend returned {len(gen.samples)} samples for k={req.k}")
                return gen, None
            except GenerationError as err:
                if not err.retryable:
                    return None, f"generation failed (not retryable): {err}"
                problem, retry_after = str(err), err.retry_after
            except Exception as err:  # noqa: BLE001 - an unexpected backend error is retried like a transient one
                problem = f"{err.__class__.__name__}: {err}"
            failures += 1
            if failures >= policy.attempts:
                return None, f"generation failed after {failures} attempts: {problem}"
            delay = backoff_delay(policy, failures, retry_after=retry_after)
            self.metrics.retry()
            log.warning("request %s: attempt %d failed (%s); retrying in %.2fs", req.id, failures, problem, delay)
            await asyncio.sleep(delay)

    async def _produce(self, events: Sequence[ResponseEvent]) -> None:
        futures = [await self.producer.send(self.topics.responses, key=e.monitor_key.encode(), value=e.to_bytes())
                   for e in events]
        await asyncio.gather(*futures)

    async def _dead_letter(self, m: ConsumerRecord, reason: str) -> None:
        log.warning("dead letter from %s[%d]@%d: %s", m.topic, m.partition, m.offset, reason)
        dl = DeadLetter.of(m.value, m.topic, m.partition, m.offset, STAGE, reason)
        await (await self.producer.send(self.topics.deadletter, value=dl.to_bytes()))
        self.metrics.dead_letter()

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        if not self.tracker.finish(tp, offset):
            return
        async with self._commit_lock:
            point = self.tracker.commit_point(tp)
            if point is None:
                return
            try:
                await self.consumer.commit({tp: point})
            except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as err:
                log.warning("could not commit %s@%d after a rebalance (%s); its new owner redoes those requests",
                            tp, point, err)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        log.info("sampler stopping: waiting up to %gs for %d requests in flight", self.config.drain_seconds,
                 len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=self.config.drain_seconds)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _progress(self) -> None:
        last = None
        while True:
            await asyncio.sleep(self.config.progress_seconds)
            m = self.metrics
            now = (m.requests, m.dead_letters, m.retries, m.in_flight)
            if now != last or m.in_flight:  # quiet while idle
                log.info(m.progress_line())
                last = now


# ----------------------------------------------------------------------------------------- probe scheduler


async def run_probe(settings: Settings, plan: ProbePlan, steps: int | None, *, interval: float = 0.0,
                    carry_timeout: float = 300.0, topic: str | None = None,
                    on_step: Callable[[int, int], None] | None = None, stop: asyncio.Event | None = None) -> int:
    """Produce one request per probe per step for ``steps`` steps (None: until stopped); return requests sent.

    With ``interval`` the steps are that many seconds apart. With carry-over (``plan.carry_turns``) each step
    waits for sample 0 of every request of the previous step on the responses topic (at most
    ``carry_timeout`` seconds) and appends that exchange to the probe's conversation.
    """
    stop = stop or asyncio.Event()
    topic = topic or settings.topics.prompts
    producer = AIOKafkaProducer(**producer_config(settings.broker))
    reader: _AnswerReader | None = None
    await producer.start()
    try:
        if plan.carry_turns:
            reader = _AnswerReader(settings)
            await reader.start()
        histories: dict[str, list[ChatMessage]] = {}
        sent = 0
        step = 0
        loop = asyncio.get_running_loop()
        while (steps is None or step < steps) and not stop.is_set():
            t_step = loop.time()
            reqs = plan.step_requests(step, histories)
            futures = [await producer.send(topic, key=r.monitor_key.encode(), value=r.to_bytes()) for r in reqs]
            await asyncio.gather(*futures)
            sent += len(reqs)
            if on_step:
                on_step(step, len(reqs))
            last = steps is not None and step + 1 >= steps
            if reader is not None and not last:
                answers = await reader.wait_for({f"{r.id}/0" for r in reqs}, carry_timeout)
                missing = 0
                for r, probe in zip(reqs, plan.probes, strict=True):
                    answer = answers.get(f"{r.id}/0")
                    missing += answer is None
                    histories[probe.id] = extend_history(histories.get(probe.id, []), r, answer)
                if missing:
                    log.warning("step %d: %d of %d answers did not arrive within %gs; their conversations go on "
                                "without this step", step, missing, len(reqs), carry_timeout)
            step += 1
            if not last and interval > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval - (loop.time() - t_step)))
        return sent
    finally:
        if reader is not None:
            await reader.stop()
        await producer.stop()


class _AnswerReader:
    """Tails the responses topic from its end (no consumer group) and collects answers by response id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consumer = AIOKafkaConsumer(**settings.broker.client_options(), enable_auto_commit=False,
                                         auto_offset_reset="latest")
        self.seen: dict[str, str] = {}

    async def start(self) -> None:
        await self.consumer.start()
        topic = self.settings.topics.responses
        parts: list[TopicPartition] = []
        for _ in range(100):
            parts = [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
            if parts:
                break
            await self.consumer._client.force_metadata_update()  # noqa: SLF001 - no public API for this
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"topic {topic!r} does not exist on the broker")
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for p in parts:  # fix the start position now, before any request is sent
            await self.consumer.position(p)

    async def wait_for(self, ids: set[str], timeout: float) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ids <= self.seen.keys() and loop.time() < deadline:
            batch = await self.consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for m in msgs:
                    try:
                        ev = ResponseEvent.parse_bytes(m.value or b"")
                    except ValueError:
                        continue
                    if ev.id in ids:
                        self.seen[ev.id] = ev.response
        return {i: self.seen[i] for i in ids if i in self.seen}

    async def stop(self) -> None:
        await self.consumer.stop()

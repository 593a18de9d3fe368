"""The Faust application: classify → event-time windows → alerts.

Stages (one agent each):

1. ``classify`` (``valuedrift.streams.worker.classify_stage``): reads raw input messages in
   batches, validates them, runs the classifier in a thread, produces
   classified records keyed by monitor key, then commits. Bad messages go to
   the dead-letter topic.
2. ``windows``: per monitor key, counts categories in event-time tumbling
   windows held in a changelog-backed table (so a restarted worker resumes),
   and emits each window's statistic once when the watermark passes its end.
   The table value keeps the highest input offset applied per input partition,
   so redelivered or re-classified messages are not counted twice.
3. ``alerts``: evaluates the alert rules on each window statistic.

The window and alert logic lives in pure modules (``valuedrift.streams.core.windowing``,
``valuedrift.streams.core.alerting``); this module only wires them to Kafka.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from valuedrift.classifier.base import Classifier
from valuedrift.streams.core.alerting import RIVER_RULES, AlertState
from valuedrift.streams.core.pipeline import RecordRefused
from valuedrift.streams.core.records import (
    ClassifiedResponse,
    DeadLetter,
    LateEvent,
    RecordError,
    WindowStatistic,
    is_tick,
    split_lines,
    tick_payload,
)
from valuedrift.streams.core.windowing import KeyWindows, idle_since
from valuedrift.streams.settings import Settings
from valuedrift.streams.sinks import AlertSinks
from valuedrift.streams.worker.classify_stage import MAX_EVENTS_PER_MESSAGE, ClassifyStage
from valuedrift.streams.worker.gc_tuning import tune_gc
from valuedrift.streams.worker.metrics import WorkerMetrics

log = logging.getLogger("valuedrift.worker")

EXIT_STAGE_FAILED = 70  # EX_SOFTWARE: a stage of the worker raised; nothing is committed past its input


def stops_worker_on_failure(stage: str) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Run a stage; if it raises, stop the whole worker with a one-line error instead of going on without it.

    Faust logs a crashed agent and keeps the others running, so a worker whose window stage died would go on
    classifying with no windows. Exiting is safe: offsets are committed only after their output is written,
    so a restarted worker redoes what the failed stage had not finished, and duplicates are skipped.
    """
    def wrap(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(fn)
        async def run(*args: Any) -> None:
            try:
                await fn(*args)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                message = (f"valuedrift worker: the {stage} stage failed ({type(err).__name__}: {err}); stopping, "
                           f"a restarted worker redoes its unfinished input")
                log.debug("the %s stage failed", stage, exc_info=err)  # the traceback, for --log-level DEBUG
                print(message, file=sys.stderr, flush=True)
                logging.shutdown()
                os._exit(EXIT_STAGE_FAILED)
        return run
    return wrap



def faust_settings(settings: Settings) -> dict[str, Any]:
    """Faust App options; the embedded broker needs one record per producer batch."""
    opts: dict[str, Any] = dict(
        broker=settings.broker.faust,
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        web_enabled=False,
        web_bind="127.0.0.1",
        autodiscover=False,
        datadir=str(settings.datadir / settings.app_id),
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 8),
        broker_rebalance_timeout=max(10.0, settings.session_timeout_seconds * 2),
        key_serializer="raw",
        value_serializer="raw",
        consumer_max_fetch_size=max(4 * 1024 * 1024, settings.max_message_bytes * 2),
        producer_max_request_size=max(1024 * 1024, settings.max_message_bytes * 2),
    )
    if settings.broker.embedded:
        opts["producer_max_batch_size"] = 1
    credentials = settings.broker.security.faust_credentials()
    if credentials is not None:
        opts["broker_credentials"] = credentials
    return opts


class WorkerApp:
    """The worker's Faust app and its stages, one method each; ``app`` is the ``faust.App`` they are wired to.

    The state the stages share lives on the object: the window and alert tables (changelog-backed), the
    in-memory detector cache, the set of live keys, the metrics and the alert sinks. Each record goes through
    the pipeline's per-record core (``valuedrift.streams.core.pipeline``), the same the offline runs call.
    """

    def __init__(self, settings: Settings, classifier: Classifier) -> None:
        settings.datadir.mkdir(parents=True, exist_ok=True)
        self.settings, self.classifier = settings, classifier
        self.app = faust.App(settings.app_id, **faust_settings(settings))
        self.app.valuedrift_settings = settings  # type: ignore[attr-defined]
        self.pipeline = settings.pipeline(classifier.taxonomy.codes, getattr(classifier, "confusion", None),
                                          classifier.taxonomy.categories)
        if any(rule in RIVER_RULES for rule in self.pipeline.policy.rules):
            # Import River (and SciPy) now, not at the first window: it takes over a second, during which
            # the event loop, and with it both stages, would stand still.
            import river.drift  # noqa: F401
        names = settings.topics
        self.classified = self._topic(names.classified)
        self.entropy = self._topic(names.entropy)
        self.alerts = self._topic(names.alerts)
        self.deadletter = self._topic(names.deadletter)
        self.late = self._topic(names.late)
        json_schema = faust.Schema(key_serializer="json", value_serializer="json")
        self.window_state = self.app.Table("window-state", default=None, partitions=settings.partitions,
                                           schema=json_schema)
        self.alert_state = self.app.Table("alert-state", default=None, partitions=settings.partitions,
                                          schema=json_schema)
        # Idle-close counts a key's silence from its last event (KeyWindows.seen_at, in the changelog), or from
        # this worker's first message for keys silent longer than that (windowing.idle_since).
        self.resumed_at: float | None = None
        self.alert_cache: dict[str, AlertState] = {}  # detector objects live in memory between windows
        self.live_keys: set[str] = set()  # keys with open windows on this worker (bounded by max_live_keys)
        self.metrics = WorkerMetrics()
        self.sinks = AlertSinks(settings.sink_specs, on_undelivered=lambda name, why: self.metrics.sink_failures
                                .labels(sink=name, why=why).inc())
        self._wire()

    def _topic(self, name: str) -> faust.TopicT:
        return self.app.topic(name, key_type=bytes, value_type=bytes, partitions=self.settings.partitions)

    def _wire(self) -> None:
        """Register the stages with Faust: two tasks, two agents and the idle-close timer."""
        app, settings = self.app, self.settings
        app.task(stops_worker_on_failure("classify")(self.classify))
        app.agent(self.classified, name="windows")(stops_worker_on_failure("windows")(self.windows))
        app.agent(self.entropy, name="alerts")(stops_worker_on_failure("alerts")(self.judge))
        if settings.metrics_port:
            app.task(stops_worker_on_failure("metrics")(self.serve_metrics))
        if settings.idle_close_seconds > 0:
            app.timer(interval=max(0.5, min(settings.idle_close_seconds / 2, 30.0)), name="tick")(self.tick)

    async def serve_metrics(self) -> None:
        s = self.settings
        self.metrics.serve(s.metrics_port, s.metrics_host)
        log.warning("metrics on http://%s:%d/metrics", s.metrics_host, s.metrics_port)

    async def classify(self) -> None:
        """Stage 1: input topic → classified topic (``ClassifyStage``)."""
        await ClassifyStage(self.settings, self.classifier, self.metrics).run()

    async def dead(self, event: faust.EventT, stage: str, reason: str, payload: bytes | None = None) -> None:
        """Send a message (or one line of it, ``payload``) to the dead-letter topic with the reason."""
        m = event.message
        self.metrics.dead_letters.labels(stage=stage).inc()
        log.warning("dead letter from %s[%d]@%d: %s", m.topic, m.partition, m.offset, reason)
        rec = DeadLetter.of(event.value if payload is None else payload, m.topic, m.partition, m.offset, stage,
                            reason)
        await self.deadletter.send(value=rec.to_bytes())

    async def emit(self, stats: list[WindowStatistic]) -> None:
        for st in stats:
            await self.entropy.send(key=st.monitor_key.encode(), value=st.to_bytes())
            self.metrics.windows.inc()
            self.metrics.entropy(st.monitor_key, st.entropy)
            self.metrics.shares(st.monitor_key, st.counts)

    def remember(self, key: str, kw: KeyWindows) -> None:
        (self.live_keys.add if kw.open else self.live_keys.discard)(key)
        self.metrics.live_keys.set(len(self.live_keys))

    def store(self, key: str, kw: KeyWindows) -> None:
        self.window_state[key] = kw.to_dict()

    async def windows(self, stream: faust.StreamT) -> None:
        """Stage 2: classified records → per-key event-time windows → window statistics, once per window."""
        # One message at a time (Faust's take buffer can block its fetcher and so hang a changelog
        # recovery during a rebalance: seen in the SIGKILL tests); a message carries one key's records
        # of a classify batch, so the key's state is written to the changelog once per message.
        async for ev in stream.events():
            raw = ev.value or b""
            if self.resumed_at is None:
                self.resumed_at = time.time()
                self.live_keys.update(k for k, v in self.window_state.items() if v and v.get("open"))
            if is_tick(raw):
                await self.close_idle(ev.message.partition)
                continue
            touched: dict[str, KeyWindows] = {}
            lines = split_lines(raw) or [raw]  # an empty message is dead-lettered
            for i, line in enumerate(lines):
                where = f" (line {i + 1} of {len(lines)})" if len(lines) > 1 else ""
                await self.window_record(ev, line, where, touched)
            for key, kw in touched.items():
                self.store(key, kw)

    async def window_record(self, ev: faust.EventT, line: bytes, where: str, touched: dict[str, KeyWindows]) -> None:
        """One classified record through the per-record core, with the Kafka bookkeeping around it."""
        try:
            rec = ClassifiedResponse.parse_bytes(line)
        except RecordError as err:
            await self.dead(ev, "windows", f"invalid classified record{where}: {err}", line)
            return
        try:
            self.pipeline.check(rec)
        except RecordRefused as err:
            await self.dead(ev, "windows", err.reason(where), line)
            return
        key, limit = rec.monitor_key, self.settings.max_live_keys
        if key not in self.live_keys and len(self.live_keys) >= limit:
            await self.dead(ev, "windows", f"live key limit max_live_keys={limit} reached; key {key[:80]!r}{where} "
                                           f"refused (raise VALUEDRIFT_MAX_LIVE_KEYS or shorten --idle-close)", line)
            return
        kw = touched.get(key) or KeyWindows.from_dict(self.window_state.get(key))
        source = None if rec.source_offset is None else (
            rec.source_partition or 0, rec.source_offset * MAX_EVENTS_PER_MESSAGE + rec.source_index)
        res = self.pipeline.add(kw, rec, source)
        if res.duplicate:
            return
        kw.seen_at = time.time()
        kw.partition = ev.message.partition
        touched[key] = kw
        await self.emit(res.closed)
        if res.late:
            log.info("late event %s for %s window %s", rec.id, key, res.window_start)
            self.metrics.late.inc()
            lr = LateEvent(record=rec, window_start=res.window_start, closed_until=res.closed_until)
            await self.late.send(key=key.encode(), value=lr.to_bytes())
        self.remember(key, kw)

    async def close_idle(self, partition: int) -> None:
        """Close the open windows of this partition's keys that have been silent for ``idle_close_seconds``."""
        idle = self.settings.idle_close_seconds
        if idle <= 0:
            return
        now = time.time()
        for key, value in list(self.window_state.items()):
            if not value or value.get("partition") != partition or not value.get("open"):
                continue
            if now - idle_since(value.get("seen_at"), self.resumed_at or now, idle) < idle:
                continue
            kw = KeyWindows.from_dict(value)
            await self.emit(kw.close_all(self.pipeline.cfg, key, "idle"))
            self.remember(key, kw)
            self.store(key, kw)

    async def tick(self) -> None:
        """Send each owned partition of the classified topic a tick: idle windows are closed inside the windows
        stream, where table writes go to the right changelog partition."""
        payload = tick_payload(time.time())
        for tp in self.app.assignor.assigned_actives():
            if tp.topic == self.settings.topics.classified:
                await self.classified.send(value=payload, partition=tp.partition)

    async def judge(self, stream: faust.StreamT) -> None:
        """Stage 3: window statistics → alert rules → alerts topic and sinks."""
        async for ev in stream.events():
            try:
                st = WindowStatistic.parse_bytes(ev.value or b"")
            except RecordError as err:
                await self.dead(ev, "alerts", f"invalid window statistic: {err}")
                continue
            # Detector objects live in memory between windows; the table holds what rebuilds them.
            state = self.alert_cache.get(st.monitor_key)
            if state is None:
                state = self.alert_cache[st.monitor_key] = AlertState.from_dict(self.alert_state.get(st.monitor_key))
            for a in self.pipeline.judge(st, state):
                await self.alerts.send(key=a.monitor_key.encode(), value=a.to_bytes())
                self.metrics.alerts.labels(rule=a.rule, severity=a.severity).inc()
                if a.rule == "drift" and a.evidence.get("top_change"):
                    self.metrics.drift_moves.labels(category=a.evidence["top_change"],
                                                    direction=a.evidence.get("direction") or "down").inc()
                self.sinks.publish(a)
            self.alert_state[st.monitor_key] = state.to_dict()


def create_app(settings: Settings, classifier: Classifier) -> faust.App:
    """Return a Faust app with the three stages wired to the configured topics."""
    return WorkerApp(settings, classifier).app


def run_worker(settings: Settings, classifier: Classifier) -> None:
    """Run a worker in the foreground until SIGINT/SIGTERM."""
    from faust.worker import Worker

    app = create_app(settings, classifier)
    worker = Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    tune_gc()
    worker.execute_from_commandline()

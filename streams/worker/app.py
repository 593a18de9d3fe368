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
from valuedrift.streams.core.alerting import RIVER_RULES, AlertState, evaluate
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


def create_app(settings: Settings, classifier: Classifier) -> faust.App:
    """Return a Faust app with the three stages wired to the configured topics."""
    settings.datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(settings.app_id, **faust_settings(settings))
    names = settings.topics
    cfg = settings.window_config(classifier.taxonomy.codes, getattr(classifier, "confusion", None))
    policy = settings.alert_policy(classifier.taxonomy.categories)
    if any(rule in RIVER_RULES for rule in policy.rules):
        # Import River (and SciPy) now, not at the first window: it takes over a second, during which
        # the event loop, and with it both stages, would stand still.
        import river.drift  # noqa: F401

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, partitions=settings.partitions)

    classified = topic(names.classified)
    entropy = topic(names.entropy)
    alerts = topic(names.alerts)
    deadletter = topic(names.deadletter)
    late = topic(names.late)
    state = app.Table("window-state", default=None, partitions=settings.partitions,
                      schema=faust.Schema(key_serializer="json", value_serializer="json"))
    alert_state = app.Table("alert-state", default=None, partitions=settings.partitions,
                            schema=faust.Schema(key_serializer="json", value_serializer="json"))
    # Idle-close counts a key's silence from its last event (KeyWindows.seen_at, in the changelog), or from this
    # worker's first message for keys silent longer than that (windowing.idle_since).
    alert_cache: dict[str, AlertState] = {}
    resumed: list[float] = []
    live_keys: set[str] = set()  # keys with open windows on this worker (bounded by max_live_keys)
    metrics = WorkerMetrics()
    sinks = AlertSinks(settings.sink_specs, on_undelivered=lambda name, why: metrics.sink_failures.labels(
        sink=name, why=why).inc())

    def remember(key: str, kw: KeyWindows) -> None:
        (live_keys.add if kw.open else live_keys.discard)(key)
        metrics.live_keys.set(len(live_keys))

    def store(key: str, kw: KeyWindows) -> None:
        state[key] = kw.to_dict()

    if settings.metrics_port:
        @app.task
        @stops_worker_on_failure("metrics")
        async def serve_metrics() -> None:
            metrics.serve(settings.metrics_port, settings.metrics_host)
            log.warning("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)


    async def dead(event: faust.EventT, stage: str, reason: str, payload: bytes | None = None) -> None:
        m = event.message
        metrics.dead_letters.labels(stage=stage).inc()
        log.warning("dead letter from %s[%d]@%d: %s", m.topic, m.partition, m.offset, reason)
        rec = DeadLetter.of(event.value if payload is None else payload, m.topic, m.partition, m.offset, stage,
                            reason)
        await deadletter.send(value=rec.to_bytes())

    @app.task
    @stops_worker_on_failure("classify")
    async def classify() -> None:
        await ClassifyStage(settings, classifier, metrics).run()

    async def emit(stats: list[WindowStatistic]) -> None:
        for st in stats:
            await entropy.send(key=st.monitor_key.encode(), value=st.to_bytes())
            metrics.windows.inc()
            metrics.entropy(st.monitor_key, st.entropy)
            metrics.shares(st.monitor_key, st.counts)

    @app.agent(classified, name="windows")
    @stops_worker_on_failure("windows")
    async def windows(stream: faust.StreamT) -> None:
        # One message at a time (Faust's take buffer can block its fetcher and so hang a changelog
        # recovery during a rebalance: seen in the SIGKILL tests); a message carries one key's records
        # of a classify batch, so the key's state is written to the changelog once per message.
        async for ev in stream.events():
            raw = ev.value or b""
            if not resumed:
                resumed.append(time.time())
                live_keys.update(k for k, v in state.items() if v and v.get("open"))
            if is_tick(raw):
                await close_idle(ev.message.partition)
                continue
            touched: dict[str, KeyWindows] = {}
            lines = split_lines(raw) or [raw]  # an empty message is dead-lettered
            for i, line in enumerate(lines):
                await window_record(ev, line, f" (line {i + 1} of {len(lines)})" if len(lines) > 1 else "", touched)
            for key, kw in touched.items():
                store(key, kw)

    async def window_record(ev: faust.EventT, line: bytes, where: str, touched: dict[str, KeyWindows]) -> None:
        try:
            rec = ClassifiedResponse.parse_bytes(line)
        except RecordError as err:
            await dead(ev, "windows", f"invalid classified record{where}: {err}", line)
            return
        if rec.category not in cfg.categories:
            await dead(ev, "windows", f"category {rec.category!r}{where} is not in taxonomy {list(cfg.categories)}",
                       line)
            return
        key = rec.monitor_key
        if key not in live_keys and len(live_keys) >= settings.max_live_keys:
            await dead(ev, "windows", f"live key limit max_live_keys={settings.max_live_keys} reached; key "
                                      f"{key[:80]!r}{where} refused (raise VALUEDRIFT_MAX_LIVE_KEYS or shorten "
                                      f"--idle-close)", line)
            return
        kw = touched.get(key) or KeyWindows.from_dict(state.get(key))
        source = None if rec.source_offset is None else (
            rec.source_partition or 0, rec.source_offset * MAX_EVENTS_PER_MESSAGE + rec.source_index)
        probs = [rec.probs.get(c, 0.0) for c in cfg.categories]
        res = kw.add(cfg, key, rec.event_time, rec.category, probs, source=source, version=rec.model_version,
                     event_id=rec.id)
        if res.duplicate:
            return
        kw.seen_at = time.time()
        kw.partition = ev.message.partition
        touched[key] = kw
        await emit(res.closed)
        if res.late:
            log.info("late event %s for %s window %s", rec.id, key, res.window_start)
            metrics.late.inc()
            lr = LateEvent(record=rec, window_start=res.window_start, closed_until=res.closed_until)
            await late.send(key=key.encode(), value=lr.to_bytes())
        remember(key, kw)

    async def close_idle(partition: int) -> None:
        if settings.idle_close_seconds <= 0:
            return
        now = time.time()
        for key, value in list(state.items()):
            if not value or value.get("partition") != partition or not value.get("open"):
                continue
            if now - idle_since(value.get("seen_at"), resumed[0], settings.idle_close_seconds) \
                    < settings.idle_close_seconds:
                continue
            kw = KeyWindows.from_dict(value)
            await emit(kw.close_all(cfg, key, "idle"))
            remember(key, kw)
            store(key, kw)

    if settings.idle_close_seconds > 0:
        @app.timer(interval=max(0.5, min(settings.idle_close_seconds / 2, 30.0)))
        async def tick() -> None:
            # Idle windows are closed inside the windows stream, where table
            # writes go to the right changelog partition: send each owned
            # partition a tick.
            payload = tick_payload(time.time())
            for tp in app.assignor.assigned_actives():
                if tp.topic == names.classified:
                    await classified.send(value=payload, partition=tp.partition)

    @app.agent(entropy, name="alerts")
    @stops_worker_on_failure("alerts")
    async def alerting(stream: faust.StreamT) -> None:
        async for ev in stream.events():
            try:
                st = WindowStatistic.parse_bytes(ev.value or b"")
            except RecordError as err:
                await dead(ev, "alerts", f"invalid window statistic: {err}")
                continue
            # Detector objects live in memory between windows; the table holds what rebuilds them.
            ast = alert_cache.get(st.monitor_key)
            if ast is None:
                ast = alert_cache[st.monitor_key] = AlertState.from_dict(alert_state.get(st.monitor_key))
            fired = evaluate(st, policy, ast)
            for a in fired:
                await alerts.send(key=a.monitor_key.encode(), value=a.to_bytes())
                metrics.alerts.labels(rule=a.rule, severity=a.severity).inc()
                if a.rule == "drift" and a.evidence.get("top_change"):
                    metrics.drift_moves.labels(category=a.evidence["top_change"],
                                               direction=a.evidence.get("direction") or "down").inc()
                sinks.publish(a)
            alert_state[st.monitor_key] = ast.to_dict()

    app.valuedrift_settings = settings  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings, classifier: Classifier) -> None:
    """Run a worker in the foreground until SIGINT/SIGTERM."""
    from faust.worker import Worker

    app = create_app(settings, classifier)
    worker = Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    tune_gc()
    worker.execute_from_commandline()

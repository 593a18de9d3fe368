"""``valuedrift soak``: sustained input through a real worker, watching memory, lag and state (on demand).

Starts an embedded broker on loopback and a worker, measures the classifier's capacity, then produces
events at a fraction of it for the set time (event time advancing with wall time, several keys, short
windows so that many windows close). Every ``sample`` seconds it records the worker's resident memory
(``/proc/PID/status``), the consumer lag (produced − classified) and windows emitted. It passes when, after
the warm-up (the first quarter), RSS stays within ±10 % of its value at the end of the warm-up and lag stays
bounded (the second half's maximum no more than the first half's plus ten seconds of input).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from valuedrift.ops.broker import EmbeddedBroker
from valuedrift.ops.kafka import ensure_topics, make_producer
from valuedrift.ops.scenario import demo_events
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.core.records import ResponseEvent, is_tick, split_lines
from valuedrift.streams.settings import BrokerURL, Settings
from valuedrift.streams.worker.gc_tuning import tune_gc


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Sample:
    t: float
    rss_mib: float
    produced: int
    classified: int
    windows: int

    @property
    def lag(self) -> int:
        return self.produced - self.classified


@dataclass
class SoakResult:
    rate: float
    samples: list[Sample] = field(default_factory=list)

    def verdict(self) -> dict[str, Any]:
        s = self.samples
        warm = s[max(1, len(s) // 4) - 1]
        after = [x.rss_mib for x in s[len(s) // 4:]]
        half = len(s) // 2
        lag1 = max((x.lag for x in s[:half]), default=0)
        lag2 = max((x.lag for x in s[half:]), default=0)
        rss_dev = max(abs(r - warm.rss_mib) / warm.rss_mib for r in after) if after else 0.0
        return {
            "rate_eps": round(self.rate, 1), "seconds": round(s[-1].t, 1) if s else 0,
            "produced": s[-1].produced if s else 0, "classified": s[-1].classified if s else 0,
            "windows": s[-1].windows if s else 0,
            "rss_mib_after_warmup": round(warm.rss_mib, 1), "rss_mib_min": round(min(after), 1),
            "rss_mib_max": round(max(after), 1), "rss_max_deviation": round(rss_dev, 3),
            "lag_max_first_half": lag1, "lag_max_second_half": lag2,
            "rss_ok": rss_dev <= 0.10, "lag_ok": lag2 <= lag1 + 10 * self.rate,
        }


async def _soak(settings: Settings, worker: WorkerProcess, events: list[ResponseEvent], rate: float,
                seconds: float, every: float, report: Any) -> SoakResult:
    producer = make_producer(settings.broker)
    consumer = AIOKafkaConsumer(settings.topics.classified, settings.topics.entropy,
                                **settings.broker.client_options(), enable_auto_commit=False,
                                auto_offset_reset="latest")
    await producer.start()
    await consumer.start()
    result = SoakResult(rate)
    counts = {"classified": 0, "windows": 0}

    async def count() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                if tp.topic == settings.topics.entropy:
                    counts["windows"] += len(msgs)
                else:
                    counts["classified"] += sum(len(split_lines(m.value)) for m in msgs if not is_tick(m.value))

    counter = asyncio.create_task(count())
    t0 = time.monotonic()
    produced, next_sample = 0, every
    try:
        while (now := time.monotonic() - t0) < seconds:
            due = min(int(now * rate), produced + 200)  # bounded steps, so sampling stays on time
            while produced < due:
                base = events[produced % len(events)]
                ev = base.model_copy(update={"id": f"soak-{produced}", "event_time": time.time()})
                await producer.send(settings.topics.responses, key=ev.monitor_key.encode(), value=ev.to_bytes())
                produced += 1
            if now >= next_sample:
                if not worker.running:
                    raise RuntimeError(f"the worker died:\n{worker.log_tail()}")
                s = Sample(round(now, 1), rss_mib(worker.proc.pid), produced, counts["classified"],  # type: ignore[union-attr]
                           counts["windows"])
                result.samples.append(s)
                report(s)
                next_sample += every
            await asyncio.sleep(0.02)
    finally:
        counter.cancel()
        await producer.stop()
        await consumer.stop()
    return result


def measure_capacity(settings: Settings, events: list[ResponseEvent]) -> float:
    from valuedrift.classifier.loading import load_classifier

    clf = load_classifier(settings.classifier, precision=settings.classifier_precision,
                          batch_size=settings.inference_batch_size)
    batch = events[: min(settings.poll_batch_size, 64)]  # about what a poll holds at steady load
    clf.predict_proba([e.prompt for e in batch], [e.response for e in batch])
    tune_gc()  # the worker's collector settings
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 5.0:
        clf.predict_proba([e.prompt for e in batch], [e.response for e in batch])
        n += len(batch)
    return n / (time.perf_counter() - t0)


def run_soak(minutes: float = 10.0, load: float = 0.8, classifier: str = "default", every: float = 10.0,
             report: Any = print) -> dict[str, Any]:
    events = list(demo_events(windows=4, per_window=100, seed=3))
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="valuedrift-soak-") as tmp:
        settings = Settings(broker=BrokerURL.parse(broker.url), classifier=classifier, window_seconds=10,
                            lateness_seconds=2, idle_close_seconds=15, partitions=2, datadir=Path(tmp) / "worker",
                            app_id="soak", topic_prefix="soak.")
        rate = load * measure_capacity(settings, events)
        asyncio.run(ensure_topics(settings))
        with WorkerProcess(settings, Path(tmp) / "worker.log") as worker:
            time.sleep(10.0)  # start-up is not part of the soak
            result = asyncio.run(_soak(settings, worker, events, rate, minutes * 60, every, report))
    achieved = result.samples[-1].produced / result.samples[-1].t if result.samples else 0.0
    return {**result.verdict(), "achieved_input_eps": round(achieved, 1), "classifier": classifier,
            "minutes": minutes, "load": load,
            "median_lag": statistics.median(s.lag for s in result.samples) if result.samples else 0}

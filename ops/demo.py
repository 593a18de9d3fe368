"""``valuedrift demo``: embedded broker + worker + a scenario with a stable and a drifting model."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from valuedrift.ops.broker import EmbeddedBroker
from valuedrift.ops.cli_errors import printable
from valuedrift.ops.kafka import ensure_topics, make_producer
from valuedrift.ops.scenario import demo_events
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.core.alerting import DEFAULT_RULES
from valuedrift.streams.core.rates import slope_estimate
from valuedrift.streams.core.records import Alert, WindowStatistic, format_time
from valuedrift.streams.settings import BrokerURL, Settings

WINDOW_SECONDS = 60.0
DRIFTING = "model-drifting"


def _table(stats: list[WindowStatistic], alerts: dict[tuple[str, float], list[str]], rows: int = 26) -> Table:
    t = Table(title="valuedrift demo: entropy per event-time window (nats)", expand=False)
    for col, justify in (("window", "left"), ("key", "left"), ("n", "right"), ("S ± SE", "right"),
                         ("ΔS", "right"), ("alerts", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for w in sorted(stats, key=lambda s: (s.window_start, s.monitor_key))[-rows:]:
        fired = alerts.get((w.monitor_key, w.window_start), [])
        d = "" if w.delta_entropy is None else f"{w.delta_entropy:+.3f}"
        style = "bold red" if "drift" in fired else None
        t.add_row(format_time(w.window_start)[11:16], w.monitor_key, str(w.n), f"{w.entropy:.3f} ± {w.entropy_se:.3f}",
                  d, ", ".join(fired), style=style)
    return t


async def _run(settings: Settings, windows: int, per_window: int, seed: int, timeout: float, console: Console,
               worker: WorkerProcess) -> tuple[list[WindowStatistic], list[Alert]]:
    topics = settings.topics
    expected = 2 * windows
    consumer = AIOKafkaConsumer(topics.entropy, topics.alerts, **settings.broker.client_options(),
                                auto_offset_reset="earliest", enable_auto_commit=False, group_id=None)
    await consumer.start()
    producer = make_producer(settings.broker)
    await producer.start()
    stats: dict[tuple[str, float], WindowStatistic] = {}
    alerts: dict[str, Alert] = {}
    fired: dict[tuple[str, float], list[str]] = defaultdict(list)
    events = list(demo_events(windows=windows, per_window=per_window, window_seconds=WINDOW_SECONDS, seed=seed))
    per_step = 2 * per_window
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    sent = 0
    try:
        with Live(_table([], fired), console=console, refresh_per_second=4) as live:
            drain_until = None  # alerts of the last windows follow their statistics
            while loop.time() < deadline and (drain_until is None or loop.time() < drain_until):
                if drain_until is None and len(stats) >= expected:
                    drain_until = loop.time() + 2.0
                if not worker.running:
                    raise RuntimeError("the worker stopped unexpectedly:\n" + worker.log_tail())
                if sent < len(events):  # one window's worth of traffic per step
                    for ev in events[sent : sent + per_step]:
                        await producer.send(topics.responses, key=ev.monitor_key.encode(), value=ev.to_bytes())
                    await producer.flush()
                    sent += per_step
                batch = await consumer.getmany(timeout_ms=400)
                for msgs in batch.values():
                    for m in msgs:
                        if m.topic == topics.entropy:
                            w = WindowStatistic.parse_bytes(m.value)
                            stats[(w.monitor_key, w.window_start)] = w
                        else:
                            a = Alert.parse_bytes(m.value)
                            if a.id not in alerts:
                                alerts[a.id] = a
                                fired[(a.monitor_key, a.window_start)].append(a.rule)
                live.update(_table(list(stats.values()), fired))
    finally:
        await producer.stop()
        await consumer.stop()
    return list(stats.values()), list(alerts.values())


def summarise(stats: list[WindowStatistic], alerts: list[Alert], console: Console) -> bool:
    """Print a per-key summary; return True when the drifting model's entropy rose and it was alerted on."""
    console.print()
    t = Table(title="summary (alerts by rule)")
    columns = (*DEFAULT_RULES, "drift")
    for col in ("key", "windows", "S first 3", "S last 3", "dS/dt per window [95% CI]", "p", *columns):
        t.add_column(col, no_wrap=True)
    ok = False
    for key in sorted({s.monitor_key for s in stats}):
        ws = sorted((s for s in stats if s.monitor_key == key), key=lambda s: s.window_start)
        first = statistics.fmean(s.entropy for s in ws[:3])
        last = statistics.fmean(s.entropy for s in ws[-3:])
        fired = {r: sum(1 for a in alerts if a.monitor_key == key and a.rule == r) for r in columns}
        rate = slope_estimate([w.entropy for w in ws], [w.entropy_se for w in ws])
        lo, hi = rate.ci
        t.add_row(key, str(len(ws)), f"{first:.3f}", f"{last:.3f}",
                  f"{rate.value:+.4f} [{lo:+.4f}, {hi:+.4f}]", f"{rate.p_value:.1g}",
                  *(str(fired[r]) for r in columns))
        if key == DRIFTING:
            ok = last > first and fired["drift"] > 0
    console.print(t)
    for a in sorted((a for a in alerts if a.rule == "drift"), key=lambda a: (a.window_start, a.monitor_key)):
        console.print(f"[bold]{a.severity}[/] {escape(printable(a.message))}", soft_wrap=True)
    console.print("The method's ε rule fires on almost every window for both models (sampling noise alone moves S "
                  "by ~0.1 nats); the calibrated rules (delta_z: one window's change; trend: the slope over the "
                  "last 20 windows; page_hinkley: cumulative deviation in nats) signal when the change is real, "
                  "and the policy turns their signals into one 'drift' alert (warning, or critical when two rules "
                  "agree) per episode, which says which categories moved.")
    return ok


def run_demo(windows: int = 24, per_window: int = 100, seed: int = 7, classifier: str = "default",
             timeout: float = 170.0) -> int:
    """Run the demo end to end; return the process exit code."""
    console = Console(width=None if sys.stdout.isatty() else 150)
    t0 = time.monotonic()
    if classifier == "default":
        from valuedrift.classifier.default_model import default_model_dir, ensure_default_model

        if not (default_model_dir() / "model.json").exists():
            console.print("building the default classifier (MiniLM + committed LoRA weights → ONNX), once ...")
        try:
            ensure_default_model()
        except RuntimeError as err:
            console.print(f"[red]error:[/] {err}")
            return 1
    with tempfile.TemporaryDirectory(prefix="valuedrift-demo-") as tmp:
        tmpdir = Path(tmp)
        with EmbeddedBroker(log_path=tmpdir / "broker.log") as broker:
            settings = Settings(
                broker=BrokerURL.parse(broker.url), window_seconds=WINDOW_SECONDS, lateness_seconds=5.0,
                idle_close_seconds=3.0, classifier=classifier, partitions=2, datadir=tmpdir / "worker",
                session_timeout_seconds=4.0, app_id="valuedrift-demo",
            )
            asyncio.run(ensure_topics(settings))
            console.print(f"[bold]embedded broker[/] {broker.url}; starting worker (classifier: {classifier}) ...")
            with WorkerProcess(settings, tmpdir / "worker.log") as worker:
                try:
                    stats, alerts = asyncio.run(
                        _run(settings, windows, per_window, seed, timeout - (time.monotonic() - t0), console, worker))
                except RuntimeError as err:
                    console.print(f"[red]error:[/] {err}")
                    return 1
                if len(stats) < 2 * windows:
                    console.print(f"[red]error:[/] only {len(stats)} of {2 * windows} windows arrived in time; "
                                  f"worker log:\n{worker.log_tail()}")
                    return 1
    ok = summarise(stats, alerts, console)
    console.print(f"done in {time.monotonic() - t0:.0f}s")
    if not ok:
        console.print("[red]error:[/] the drifting model was not detected")
        return 1
    return 0

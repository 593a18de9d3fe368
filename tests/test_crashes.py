"""Crashes and rebalances on the real broker: nothing lost, nothing counted twice.

Workers are killed with SIGKILL at random (seeded) moments while input is flowing; the windows and alerts
of the crashed-and-restarted pipeline must equal those of an uncrashed (offline) run on the same input.
A window may be emitted again after a crash, byte-identical and with the same id (at-least-once output).
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from valuedrift.classifier.rules import RuleClassifier
from valuedrift.ops.kafka import ensure_topics
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.offline import run_offline

from tests.helpers import alerts_of, comparable, produce, scenario, windows_of

pytestmark = pytest.mark.integration


def distinct(records, what):
    seen = {}
    for r in records:
        prior = seen.setdefault(r.id, r)
        assert prior == r, f"{what} {r.id} was emitted twice with different values"
    return list(seen.values())


def test_repeated_sigkills_at_random_moments_lose_and_double_count_nothing(settings, tmp_path):
    settings = settings.replace(idle_close_seconds=6.0)
    asyncio.run(ensure_topics(settings))
    events = scenario(n_windows=10, per_window=20, seed=31)
    expected = run_offline(events, RuleClassifier(), settings)
    rng = random.Random(7)
    chunks = [events[a:b] for a, b in ((0, 100), (100, 200), (200, 300), (300, len(events)))]
    for i, chunk in enumerate(chunks):
        with WorkerProcess(settings, tmp_path / f"w{i}.log") as w:
            produce(settings, chunk)
            if i < len(chunks) - 1:
                time.sleep(rng.uniform(2.0, 8.0))  # mid-batch, mid-window, or mid-startup
                w.kill()
            else:
                live = windows_of(settings, expect=len(expected.windows), timeout=120)
                alerts = alerts_of(settings, idle=4.0)
                assert w.running, w.log_tail()
    assert comparable(distinct(live, "window")) == comparable(expected.windows)
    assert sorted(a.id for a in distinct(alerts, "alert")) == sorted(a.id for a in expected.alerts)


def test_two_workers_one_killed_the_other_takes_over_after_a_rebalance(settings, tmp_path):
    settings = settings.replace(idle_close_seconds=6.0, partitions=4)
    asyncio.run(ensure_topics(settings))
    events = scenario(n_windows=8, per_window=20, seed=32)
    expected = run_offline(events, RuleClassifier(), settings)
    half = len(events) // 2
    second = settings.replace(datadir=tmp_path / "worker-b")
    with WorkerProcess(settings, tmp_path / "a.log") as a, WorkerProcess(second, tmp_path / "b.log") as b:
        time.sleep(8.0)  # both join the group and share the partitions
        produce(settings, events[:half])
        time.sleep(3.0)
        b.kill()
        produce(settings, events[half:])
        live = windows_of(settings, expect=len(expected.windows), timeout=150)
        alerts = alerts_of(settings, idle=4.0)
        assert a.running, a.log_tail()
    assert comparable(distinct(live, "window")) == comparable(expected.windows)
    assert sorted(a.id for a in distinct(alerts, "alert")) == sorted(a.id for a in expected.alerts)

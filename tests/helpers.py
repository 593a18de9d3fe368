"""What the tests share: texts whose rule-baseline category is known, simulated windows, and helpers that drive
the live worker on the embedded broker. Test modules import from here, never from each other."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time

from valuedrift.ops.kafka import read_topic, send_all
from valuedrift.streams.core.alerting import AlertPolicy, AlertState, evaluate
from valuedrift.streams.core.records import Alert, ResponseEvent, WindowStatistic
from valuedrift.streams.core.windowing import WindowConfig, WindowEngine

from tests.texts import PAIRS

T0 = 1767225600.0


def cli(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    """``valuedrift ARGS`` in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "valuedrift.ops.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def ev(i: int, key: str, t: float, code: str) -> ResponseEvent:
    prompt, response = PAIRS[code]
    return ResponseEvent(id=f"{key}-{i}", monitor_key=key, event_time=T0 + t, prompt=prompt, response=response)


def produce(settings, events, extra=()):
    msgs = [(e.monitor_key.encode(), e.to_bytes()) for e in events] + list(extra)
    asyncio.run(send_all(settings.broker, settings.topics.responses, msgs))


def windows_of(settings, expect, timeout=90.0):
    """Every window statistic on the entropy topic, once ``expect`` distinct windows are there (or at timeout).

    After a crash a window may be emitted twice, so the count of messages alone can reach ``expect`` early.
    """
    deadline = time.monotonic() + timeout
    want = expect
    while True:
        raw = asyncio.run(read_topic(settings.broker, settings.topics.entropy, expect=want,
                                     timeout=max(deadline - time.monotonic(), 1.0)))
        ws = [WindowStatistic.parse_bytes(r) for r in raw]
        missing = expect - len({w.id for w in ws})
        if missing <= 0 or time.monotonic() >= deadline:
            return ws
        want = len(raw) + missing


def alerts_of(settings, idle=3.0):
    raw = asyncio.run(read_topic(settings.broker, settings.topics.alerts, timeout=30, idle=idle))
    return [Alert.parse_bytes(r) for r in raw]


def comparable(ws):
    return sorted((w.monitor_key, w.window_start, w.n, tuple(w.counts.items()), round(w.entropy, 12),
                   None if w.delta_entropy is None else round(w.delta_entropy, 12)) for w in ws)


def scenario(n_windows=8, per_window=15, seed=11, drift_to=("g2", "g4", "g5")):
    """alpha answers across all categories throughout; beta from window 4 on only in ``drift_to``."""
    rng = random.Random(seed)
    out = []
    for w in range(n_windows):
        for key in ("alpha", "beta"):
            for i in range(per_window):
                code = rng.choice(list(PAIRS)) if key == "alpha" or w < 4 else rng.choice(list(drift_to))
                out.append(ev(len(out), key, w * 60 + (i + 0.5) * 60 / per_window, code))
    return out



def windows_from(probs_per_window, k=100, seed=0):
    """Simulate k categorical draws per window and return the closed window statistics."""
    rng = random.Random(seed)
    eng = WindowEngine(WindowConfig(size=60, lateness=0))
    out = []
    codes = ["g1", "g2", "g3", "g4", "g5"]
    for w, p in enumerate(probs_per_window):
        for i in range(k):
            out.extend(eng.add("k", T0 + 60 * w + i * 60 / k, rng.choices(codes, weights=p)[0]).closed)
    return out + eng.flush()


def run_rules(stats, policy=AlertPolicy()):
    st = AlertState()
    return [a for w in stats for a in evaluate(w, policy, st)]


P = (0.6, 0.2, 0.1, 0.05, 0.05)

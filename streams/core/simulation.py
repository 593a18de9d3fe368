"""Simulated monitored keys with ground truth: category-probability trajectories, k samples per step.

Scenarios (one window = one step):
- ``stable``: a fixed behaviour mix (an instruction-tuned model);
- ``drift``: entropy rises at a set rate σ nats/step (the method's base models: ≈ 0.0125);
- ``jump``: an abrupt change of the entropy by a set amount at a set step;
- ``jailbreak``: gradual jailbreak pressure moves probability mass towards g2 with a logistic schedule.

Pure and seeded (numpy ``default_rng``).

>>> p = drift_probs(BASE, sigma=0.0125, steps=3)
>>> [round(plugin_entropy(list(q)) - plugin_entropy(list(BASE)), 4) for q in p]
[0.0, 0.0125, 0.025]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from valuedrift.streams.core.entropy import plugin_entropy
from valuedrift.streams.core.records import WindowStatistic
from valuedrift.streams.core.taxonomy import CATEGORY_CODES
from valuedrift.streams.core.windowing import window_statistic

BASE = (0.85, 0.02, 0.10, 0.02, 0.01)
START = 1767225600.0  # 2026-01-01T00:00:00Z
SCENARIOS = ("stable", "drift", "jump", "jailbreak")


def mix_for_entropy(p0: Sequence[float], target: float) -> np.ndarray:
    """Return (1 − a)·p0 + a·uniform with the a in [0, 1] that gives entropy ``target`` (capped at ln K)."""
    p = np.asarray(p0, dtype=float)
    u = np.full(len(p), 1.0 / len(p))
    if target <= plugin_entropy(list(p)):
        return p
    if target >= math.log(len(p)):
        return u
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if plugin_entropy(list((1 - mid) * p + mid * u)) < target:
            lo = mid
        else:
            hi = mid
    return (1 - hi) * p + hi * u


def drift_probs(p0: Sequence[float], sigma: float, steps: int, onset: int = 0) -> list[np.ndarray]:
    """Probabilities per step whose entropy rises by ``sigma`` nats per step from ``onset`` on."""
    s0 = plugin_entropy(list(p0))
    return [mix_for_entropy(p0, s0 + sigma * max(0, t - onset)) for t in range(steps)]


def jump_probs(p0: Sequence[float], size: float, steps: int, at: int) -> list[np.ndarray]:
    """Probabilities per step with the entropy raised by ``size`` nats from step ``at`` on."""
    p1 = mix_for_entropy(p0, plugin_entropy(list(p0)) + size)
    return [np.asarray(p0, float) if t < at else p1 for t in range(steps)]


def jailbreak_probs(p0: Sequence[float], steps: int, midpoint: int, steepness: float = 0.3,
                    max_share: float = 0.5) -> list[np.ndarray]:
    """Probabilities per step where a logistic jailbreak pressure moves up to ``max_share`` of the mass to g2."""
    p = np.asarray(p0, float)
    target = np.zeros(len(p))
    target[1] = 1.0
    out = []
    for t in range(steps):
        a = max_share / (1 + math.exp(-steepness * (t - midpoint)))
        out.append((1 - a) * p + a * target)
    return out


@dataclass
class SimulatedKey:
    """A key's true probabilities per step and its sampled counts per step."""

    key: str
    probs: list[np.ndarray]
    counts: np.ndarray  # steps × K

    @property
    def true_entropy(self) -> list[float]:
        return [plugin_entropy(list(p)) for p in self.probs]


def sample(key: str, probs: list[np.ndarray], k: int | Sequence[int], rng: np.random.Generator) -> SimulatedKey:
    """k responses per step drawn from each step's probabilities (``k``: one number, or one per step)."""
    ks = [k] * len(probs) if isinstance(k, int) else list(k)
    counts = np.stack([rng.multinomial(n, p / p.sum()) for n, p in zip(ks, probs, strict=True)])
    return SimulatedKey(key, probs, counts)


def ebb_and_flow(steps: int, rng: np.random.Generator, low: float = 5.0, high: float = 100.0,
                 period: int = 48) -> list[int]:
    """Responses per window of a key whose traffic follows a day: a Poisson count around a mean that swings
    between ``low`` and ``high`` over ``period`` windows (at least 1: an empty window is never emitted).

    >>> ks = ebb_and_flow(96, np.random.default_rng(0))
    >>> min(ks) >= 1, 60 < max(ks) < 140
    (True, True)
    """
    means = [low + (high - low) * (1 - math.cos(2 * math.pi * t / period)) / 2 for t in range(steps)]
    return [max(1, int(rng.poisson(m))) for m in means]


def scenario_probs(scenario: str, steps: int, sigma: float = 0.0125, jump: float = 0.1, onset: int | None = None,
                   p0: Sequence[float] = BASE) -> list[np.ndarray]:
    onset = steps // 3 if onset is None else onset
    if scenario == "stable":
        return [np.asarray(p0, float)] * steps
    if scenario == "drift":
        return drift_probs(p0, sigma, steps, onset)
    if scenario == "jump":
        return jump_probs(p0, jump, steps, onset)
    if scenario == "jailbreak":
        return jailbreak_probs(p0, steps, midpoint=onset + 10)
    raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")


def window_statistics(sim: SimulatedKey, window_seconds: float = 60.0,
                      categories: Sequence[str] = CATEGORY_CODES) -> list[WindowStatistic]:
    """The window statistics the pipeline would emit for the key's sampled counts (one window per step)."""
    out = []
    prev = None
    for t, c in enumerate(sim.counts):
        start = START + t * window_seconds
        st = window_statistic(sim.key, start, start + window_seconds, categories, [float(x) for x in c], None,
                              "watermark", prev)
        prev = (int(round(start * 1000)), st.entropy, st.entropy_se)
        out.append(st)
    return out

"""``valuedrift bench detectors``: false alarms, detection delays and σ recovery of every alert rule.

Each run simulates k responses per window (seeded): a no-drift key, a key whose entropy starts rising at
σ = 0.0125 nats/step after a stable stretch, and a key whose entropy jumps by +0.1 nats. Every rule runs
on the same window statistics. ``by_k`` repeats it for k = 5 … 500 responses per window and for a key whose
traffic ebbs and flows (``varying``: 5 to 100 a window over a 48-window day), since the rules must hold at
every window size; delays are counted in windows.

``default`` is the worker's default policy: a ``drift`` episode opens when any of ``delta_z``, ``trend`` and
``page_hinkley`` fires (``valuedrift.streams.core.policy``); its false alarms count episodes.
``policy_2_of_10`` is the stricter k-of-n variant (two distinct rules within 10 blocks).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from valuedrift.streams.core.alerting import RULES, AlertPolicy, AlertState, evaluate, trend_slope
from valuedrift.streams.core.simulation import BASE, ebb_and_flow, sample, scenario_probs, window_statistics

DEFAULT_NAME = "default"
POLICIES = {DEFAULT_NAME: AlertPolicy(rules=RULES),
            "policy_2_of_10": AlertPolicy(rules=RULES, combine="k_of_n", k=2, n=10)}
NAMES = (*RULES, *POLICIES)


def _fired(stats: list) -> list[set[str]]:
    """Per window, the rules that fired and the policies that opened a drift episode."""
    out: list[set[str]] = [set() for _ in stats]
    for name, policy in POLICIES.items():
        st = AlertState()
        for t, w in enumerate(stats):
            for a in evaluate(w, policy, st):
                if a.rule == "drift":
                    out[t].add(name)
                elif name == DEFAULT_NAME and a.rule in RULES:
                    out[t].add(a.rule)
    return out


def _first_alerts(stats: list, onset: int) -> dict[str, int | None]:
    """Windows after the onset until each rule or policy first fires (None when it never does)."""
    first: dict[str, int | None] = dict.fromkeys(NAMES)
    for t, fired in enumerate(_fired(stats)):
        for name in fired:
            if t >= onset and first[name] is None:
                first[name] = t - onset
    return first


def _summary(delays: list[int | None], horizon: int) -> tuple[float | None, float | None, float]:
    got = [d for d in delays if d is not None]
    missed = 1 - len(got) / len(delays)
    if len(got) < len(delays) / 2:
        return None, None, missed
    censored = np.array([d if d is not None else horizon for d in delays], dtype=float)
    p90 = float(np.percentile(censored, 90))
    return float(np.median(censored)), (round(p90, 1) if p90 < horizon else None), missed


BY_K = (5, 10, 20, 50, 100, 500)
VARYING = "varying"


def _sizes(k: int | str, steps: int, rng: np.random.Generator) -> int | list[int]:
    return ebb_and_flow(steps, rng) if k == VARYING else int(k)


def run_bench(runs: int = 200, k: int | str = 100, seed: int = 0, null_windows: int = 100, onset: int = 30,
              drift_windows: int = 80, jump_windows: int = 80, sigma: float = 0.0125, jump: float = 0.1
              ) -> dict[str, Any]:
    """Every rule and policy at one window size ``k`` (or ``"varying"``): false alarms per 1,000 no-drift
    windows, delays and misses for the drift and the jump, and the σ estimate's coverage."""
    rng = np.random.default_rng(seed)
    names = list(NAMES)
    false_alarms = dict.fromkeys(names, 0)
    null_evaluated = 0
    drift_delays: dict[str, list[int | None]] = {n: [] for n in names}
    jump_delays: dict[str, list[int | None]] = {n: [] for n in names}
    estimates, covered = [], 0
    for _ in range(runs):
        stats = window_statistics(sample("null", scenario_probs("stable", null_windows),
                                         _sizes(k, null_windows, rng), rng))
        for fired in _fired(stats):
            for r in fired:
                false_alarms[r] += 1
        null_evaluated += len(stats)
        sim = sample("drift", scenario_probs("drift", onset + drift_windows, sigma=sigma, onset=onset),
                     _sizes(k, onset + drift_windows, rng), rng)
        stats = window_statistics(sim)
        for n, d in _first_alerts(stats, onset).items():
            drift_delays[n].append(d)
        seg = stats[onset:]
        slope, se = trend_slope([w.entropy for w in seg], [w.entropy_se for w in seg])
        estimates.append(slope)
        covered += abs(slope - sigma) <= 1.96 * se
        probs = scenario_probs("jump", onset + jump_windows, jump=jump, onset=onset)
        stats = window_statistics(sample("jump", probs, _sizes(k, onset + jump_windows, rng), rng))
        for n, d in _first_alerts(stats, onset).items():
            jump_delays[n].append(d)
    detectors = {}
    for n in names:
        med, p90, missed = _summary(drift_delays[n], drift_windows)
        jmed, _, jmissed = _summary(jump_delays[n], jump_windows)
        detectors[n] = {
            "false_alarms_per_1000": round(1000 * false_alarms[n] / null_evaluated, 3),
            "median_delay_drift": med, "p90_delay_drift": p90, "median_delay_jump": jmed,
            "missed_drift": round(missed, 3), "missed_jump": round(jmissed, 3),
        }
    return {
        "default_policy": DEFAULT_NAME,
        "detectors": detectors,
        "sigma": {"injected": sigma, "mean_estimate": round(float(np.mean(estimates)), 5),
                  "ci_coverage": round(covered / runs, 3)},
        "runs": runs, "k": k, "seed": seed, "base_probs": list(BASE),
        "windows": {"null": null_windows, "onset": onset, "drift": drift_windows, "jump": jump_windows},
    }


def run_by_k(runs: int = 200, seed: int = 0, ks: tuple[int | str, ...] = (*BY_K, VARYING)) -> dict[str, Any]:
    """``run_bench`` at every window size in ``ks``: per size, each rule's and policy's false alarms and delays."""
    return {str(k): run_bench(runs=runs, k=k, seed=seed)["detectors"] for k in ks}


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x

"""Alert rules on blocks of at least min_n responses: calibrated at every window size, quiet on a stray event."""

from __future__ import annotations

import json

import numpy as np
import pytest
from valuedrift.streams.core.alerting import AlertPolicy, AlertState, evaluate
from valuedrift.streams.core.blocks import Accumulator, Block, delta_test, null_variance
from valuedrift.streams.core.simulation import ebb_and_flow, sample, scenario_probs, window_statistics
from valuedrift.streams.core.windowing import WindowConfig, WindowEngine

T0 = 1767225600.0


def episodes(stats, policy=AlertPolicy()) -> int:
    st = AlertState()
    return sum(a.rule == "drift" for w in stats for a in evaluate(w, policy, st))


@pytest.mark.parametrize("k", [5, 10, 20, 50, "varying"])
def test_stationary_small_windows_do_not_page(k):
    """Judged window by window, the default policy opened 33, 33, 14 and 3 false episodes per 1,000 stationary
    windows at k = 5, 10, 20 and 50 (bench detectors); on blocks it must stay at the k = 100 level (≤ 1)."""
    rng = np.random.default_rng(21)
    total = found = 0
    for _ in range(10):
        steps = 300
        sizes = ebb_and_flow(steps, rng) if k == "varying" else k
        stats = window_statistics(sample("null", scenario_probs("stable", steps), sizes, rng))
        found += episodes(stats)
        total += len(stats)
    assert total == 3000
    assert found <= 3, f"{found} false drift episodes in {total} stationary windows at k = {k}"


def test_drift_is_still_found_at_small_k_after_merging():
    rng = np.random.default_rng(5)
    probs = scenario_probs("jump", 400, jump=0.6, onset=100)  # a big change, seen through windows of 10
    stats = window_statistics(sample("jump", probs, 10, rng))
    st, first = AlertState(), None
    for t, w in enumerate(stats):
        if any(a.rule == "drift" for a in evaluate(w, AlertPolicy(), st)) and first is None:
            first = t
    assert first is not None and 100 <= first < 160, first


def window(t: float, counts: dict[str, int]):
    eng = WindowEngine(WindowConfig(size=60, lateness=0))
    codes = list(counts)
    for c in codes:
        for i in range(counts[c]):
            eng.add("m", T0 + t + 1 + i * 0.01, c)
    (w,) = eng.flush()
    return w


def test_a_stray_event_alone_raises_nothing_and_is_marked_insufficient():
    many = {"g1": 85, "g2": 2, "g3": 10, "g4": 2, "g5": 1}
    st, out = AlertState(), []
    for i in range(5):
        out += evaluate(window(60 * i, many), AlertPolicy(), st)
    stray = window(300, {"g1": 0, "g2": 0, "g3": 0, "g4": 0, "g5": 1})
    assert stray.insufficient and not window(0, many).insufficient
    assert evaluate(stray, AlertPolicy(), st) == []
    after = evaluate(window(360, many), AlertPolicy(), st)  # the stray is merged into this block
    assert not [a for a in out + after if a.severity != "info"]
    assert st.blocks[-1].windows == 2 and st.blocks[-1].n == 101


def test_blocks_merge_small_windows_and_survive_a_restart():
    acc, policy = Accumulator(), AlertPolicy(min_n=30)
    assert acc.add(0, 60, (10, 2, 0), policy.min_n) is None
    again = Accumulator.from_list(json.loads(json.dumps(acc.to_list())))
    block = again.add(60, 120, (15, 3, 1), policy.min_n)
    assert block == Block(0, 120, 2, (25, 5, 1)) and again.pending is None
    st = AlertState()
    evaluate(window(0, {"g1": 20, "g2": 0, "g3": 0, "g4": 0, "g5": 0}), AlertPolicy(), st)
    restored = AlertState.from_dict(json.loads(json.dumps(st.to_dict())))
    assert restored.pending.pending == st.pending.pending and restored.pending.pending.n == 20
    assert AlertState.from_dict({"history": [[0, 1.0, 0.1]], "last_window_start": 0.0}).blocks == []


def test_null_standard_errors_are_never_zero_and_pool_both_blocks():
    one = Block(0, 60, 1, (100, 0, 0, 0, 0))
    assert null_variance([one.counts]) > 0
    d, se = delta_test(one, Block(60, 120, 1, (100, 0, 0, 0, 0)))
    assert d == 0 and se > 0
    d, se = delta_test(one, Block(60, 120, 1, (50, 50, 0, 0, 0)))
    assert d > 0 and se == pytest.approx((null_variance([(150, 50, 0, 0, 0)]) * (2 / 100)) ** 0.5)

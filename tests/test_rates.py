import numpy as np
import pytest
from valuedrift.streams.core.rates import effective_alignment_work, slope_estimate, suppression, variance_shares
from valuedrift.streams.core.simulation import sample, scenario_probs, window_statistics


def series(scenario, steps=60, seed=0, **kw):
    stats = window_statistics(sample("k", scenario_probs(scenario, steps, onset=0, **kw), 100,
                                     np.random.default_rng(seed)))
    return [w.entropy for w in stats], [w.entropy_se for w in stats]


def test_slope_recovers_injected_sigma_within_its_ci_most_of_the_time():
    hits = 0
    for seed in range(40):
        est = slope_estimate(*series("drift", seed=seed, sigma=0.0125))
        lo, hi = est.ci
        hits += lo <= 0.0125 <= hi
    assert hits >= 34  # nominal 95%


def test_gamma_and_suppression_for_base_versus_tuned():
    base = slope_estimate(*series("drift", seed=1, sigma=0.0125))
    tuned = slope_estimate(*series("drift", seed=2, sigma=0.002))
    gamma = effective_alignment_work(base, tuned)
    assert gamma.value > 0 and gamma.p_value < 0.001
    sup = suppression(tuned, base)
    assert 60 < sup.value < 100 and sup.ci[0] < 84 < sup.ci[1] + 20
    with pytest.raises(ValueError, match="no drift"):
        suppression(tuned, slope_estimate([1, 1, 1], [0, 0, 0]))


def test_sampling_dominates_the_variance_of_a_stable_key():
    shares = variance_shares(*series("stable", steps=200, seed=3))
    assert 0.8 <= shares["sampling_share"] <= 1.0
    drifting = variance_shares(*series("drift", steps=80, seed=3, sigma=0.0125))
    assert drifting["sampling_share"] < shares["sampling_share"]


def test_slope_needs_three_windows():
    with pytest.raises(ValueError, match="at least 3"):
        slope_estimate([1.0, 2.0])

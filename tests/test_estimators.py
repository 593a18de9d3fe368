import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from valuedrift.streams.core.entropy import miller_madow_entropy, plugin_entropy
from valuedrift.streams.core.estimators import (
    bootstrap_ci,
    chao_shen_entropy,
    confusion_corrected,
    project_to_simplex,
    soft_entropy,
)

P = [0.6, 0.2, 0.1, 0.05, 0.05]
TRUE_S = -sum(p * math.log(p) for p in P)


def simulate(n, reps=2000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, P, size=reps)


def test_bias_correction_beats_plugin_on_simulated_windows():
    draws = simulate(30)
    bias = {name: abs(np.mean([fn(d) for d in draws]) - TRUE_S)
            for name, fn in (("plugin", plugin_entropy), ("mm", miller_madow_entropy), ("cs", chao_shen_entropy))}
    assert bias["mm"] < bias["plugin"] and bias["cs"] < bias["plugin"]


def test_bootstrap_ci_covers_the_truth_about_as_often_as_claimed():
    draws = simulate(100, reps=150, seed=3)
    covered = 0
    for i, d in enumerate(draws):
        lo, hi = bootstrap_ci(d, reps=400, seed=i)
        covered += lo <= TRUE_S <= hi
    assert 0.85 <= covered / len(draws) <= 0.99


def test_bootstrap_is_seeded():
    assert bootstrap_ci([5, 3, 2], seed=4) == bootstrap_ci([5, 3, 2], seed=4)


def test_confusion_correction_undoes_a_known_confusion():
    true = np.array([0.7, 0.1, 0.1, 0.05, 0.05])
    conf = np.array([[90, 2, 2, 3, 3], [10, 80, 5, 0, 5], [5, 0, 90, 5, 0], [10, 0, 10, 80, 0], [5, 5, 0, 0, 90]])
    p_given_true = conf / conf.sum(1, keepdims=True)
    predicted = true @ p_given_true * 1000
    np.testing.assert_allclose(confusion_corrected(predicted, conf), true, atol=1e-9)
    # the classifier's errors inflate the entropy; the correction brings it back
    assert plugin_entropy(list(predicted)) > plugin_entropy(list(confusion_corrected(predicted, conf)))
    with pytest.raises(ValueError, match="5x5"):
        confusion_corrected([1, 2, 3, 4, 5], np.eye(3))


def test_soft_entropy_uses_mean_probabilities():
    assert soft_entropy([[1, 0], [0, 1]]) == pytest.approx(math.log(2))
    assert soft_entropy([]) == 0.0


counts = st.lists(st.integers(min_value=0, max_value=500), min_size=2, max_size=6)


@given(counts)
def test_estimators_stay_within_bounds(c):
    k = len(c)
    for fn in (plugin_entropy, chao_shen_entropy):
        s = fn(c)
        assert s >= 0
    assert plugin_entropy(c) <= math.log(k) + 1e-12


@given(counts, st.randoms(use_true_random=False))
def test_chao_shen_is_permutation_invariant(c, rnd):
    d = c[:]
    rnd.shuffle(d)
    assert chao_shen_entropy(d) == pytest.approx(chao_shen_entropy(c), rel=1e-9, abs=1e-12)


@given(st.lists(st.floats(min_value=-5, max_value=5), min_size=2, max_size=6))
def test_simplex_projection_is_a_distribution(v):
    p = project_to_simplex(np.asarray(v))
    assert p.min() >= 0 and p.sum() == pytest.approx(1.0)

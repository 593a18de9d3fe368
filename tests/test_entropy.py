import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from valuedrift.streams.core.entropy import entropy_se, estimate, miller_madow_entropy, plugin_entropy


def test_hand_computed_values():
    assert plugin_entropy([80, 10, 10]) == pytest.approx(-(0.8 * math.log(0.8) + 0.2 * math.log(0.1)))
    assert round(plugin_entropy([80, 10, 10]), 3) == 0.639
    assert plugin_entropy([1, 1, 1, 1, 1]) == pytest.approx(math.log(5))
    assert plugin_entropy([7, 0, 0]) == 0.0
    assert plugin_entropy([]) == 0.0
    assert plugin_entropy([3, 1]) == pytest.approx(0.5623351446)


def test_miller_madow_adds_observed_categories_minus_one_over_2n():
    assert miller_madow_entropy([80, 10, 10, 0, 0]) == pytest.approx(plugin_entropy([80, 10, 10]) + 2 / 200)


def test_architecture_reference_numbers():
    est = estimate([60, 20, 10, 5, 5])
    assert est.plugin == pytest.approx(1.158, abs=5e-4)
    assert est.se == pytest.approx(0.087, abs=1e-3)
    assert est.n == 100


def test_standard_error_matches_simulated_spread():
    rng = random.Random(3)
    p = [0.6, 0.2, 0.1, 0.05, 0.05]
    values = []
    for _ in range(3000):
        counts = [0] * 5
        for c in rng.choices(range(5), weights=p, k=100):
            counts[c] += 1
        values.append(plugin_entropy(counts))
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    assert sd == pytest.approx(entropy_se([60, 20, 10, 5, 5]), rel=0.15)
    # the plug-in estimate is biased low by about (K-1)/(2N); Miller–Madow removes most of it
    true_s = -sum(q * math.log(q) for q in p)
    assert true_s - mean == pytest.approx(4 / 200, abs=0.01)


def test_negative_or_infinite_counts_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        plugin_entropy([1, -1])
    with pytest.raises(ValueError):
        entropy_se([1, float("inf")])


counts_lists = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=8)


@given(counts_lists)
def test_entropy_is_within_zero_and_log_k(counts):
    s = plugin_entropy(counts)
    assert 0.0 <= s <= math.log(len(counts)) + 1e-12


@given(counts_lists, st.randoms(use_true_random=False))
def test_entropy_is_permutation_invariant(counts, rnd):
    shuffled = counts[:]
    rnd.shuffle(shuffled)
    assert plugin_entropy(shuffled) == pytest.approx(plugin_entropy(counts), abs=1e-12)
    assert entropy_se(shuffled) == pytest.approx(entropy_se(counts), abs=1e-12, nan_ok=True)

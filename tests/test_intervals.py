"""Bootstrap intervals of the evaluation scores: seeded, resampling whole prompts, and honest about width."""

from __future__ import annotations

import random

import numpy as np
from valuedrift.classifier.intervals import resampled_confusions, score_intervals, statistic_interval
from valuedrift.classifier.metrics import classification_report, spearman

CODES = ["g1", "g2", "g3"]


def noisy_labels(n: int, accuracy: float, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    truth = [rng.choice(CODES) for _ in range(n)]
    guess = [t if rng.random() < accuracy else rng.choice([c for c in CODES if c != t]) for t in truth]
    return truth, guess


def width(interval: list[float]) -> float:
    return interval[1] - interval[0]


def test_intervals_hold_the_point_estimates_and_are_seeded():
    truth, guess = noisy_labels(400, 0.7, seed=1)
    prompts = [f"p{i // 2}" for i in range(400)]
    rep = classification_report(truth, guess, CODES)
    iv = score_intervals(truth, guess, prompts, CODES)
    for key in ("accuracy", "macro_f1", "cohen_kappa"):
        assert iv[key][0] < rep[key] < iv[key][1], key
    assert all(iv["recall"][c][0] < rep["per_class"][c]["recall"] < iv["recall"][c][1] for c in CODES)
    assert iv == score_intervals(truth, guess, prompts, CODES)
    assert iv["accuracy"] != score_intervals(truth, guess, prompts, CODES, seed=1)["accuracy"]
    assert 0.05 < width(iv["accuracy"]) < 0.15  # about 4 standard errors of a proportion of 0.7 on 400


def test_pairs_of_one_prompt_move_together_so_the_interval_widens():
    """Ten answers to each prompt, all right or all wrong: 40 independent outcomes, not 400."""
    rng = random.Random(2)
    truth, guess, prompts = [], [], []
    for p in range(40):
        label = rng.choice(CODES)
        right = rng.random() < 0.7
        for _ in range(10):
            truth.append(label)
            guess.append(label if right else CODES[(CODES.index(label) + 1) % 3])
            prompts.append(f"p{p}")
    by_prompt = score_intervals(truth, guess, prompts, CODES)["accuracy"]
    by_pair = score_intervals(truth, guess, [str(i) for i in range(400)], CODES)["accuracy"]
    assert width(by_prompt) > 2.5 * width(by_pair)  # sqrt(10) ≈ 3.2 in theory


def test_perfect_predictions_have_a_degenerate_interval_and_absent_classes_none():
    truth = ["g1", "g2"] * 30
    iv = score_intervals(truth, truth, [str(i) for i in range(60)], CODES)
    assert iv["accuracy"] == [1.0, 1.0] and iv["recall"]["g1"] == [1.0, 1.0]
    assert all(np.isnan(iv["recall"]["g3"]))  # g3 never occurs: no recall to estimate


def test_each_resample_draws_as_many_prompts_as_there_are():
    truth, guess = noisy_labels(90, 0.6, seed=3)
    stack = resampled_confusions(truth, guess, [f"p{i // 3}" for i in range(90)], CODES, resamples=50)
    assert stack.shape == (50, 3, 3) and (stack.sum(axis=(1, 2)) == 90).all()  # 30 prompts of 3 pairs each
    assert len({tuple(m.ravel()) for m in stack}) > 40


def test_the_entropy_correlation_gets_an_interval_over_its_groups():
    rng = np.random.default_rng(4)
    human = rng.uniform(0, 1.6, 40)
    pairs = list(zip(human, human + rng.normal(0, 0.2, 40), strict=True))

    def rho(sample):
        return spearman([h for h, _ in sample], [m for _, m in sample])

    lo, hi = statistic_interval(pairs, rho)
    assert lo < rho(pairs) < hi <= 1.0 and lo > 0.6


def test_a_paired_comparison_sees_a_small_consistent_gain_that_separate_intervals_hide():
    """B is A with 12 of 600 right answers turned wrong: separate intervals overlap, the paired one excludes 0."""
    from valuedrift.classifier.comparison import compare_predictions
    from valuedrift.classifier.datasets import Example

    truth, a = noisy_labels(600, 0.7, seed=5)
    right = [i for i in range(600) if a[i] == truth[i]]
    wrong = set(random.Random(6).sample(right, 12))
    b = [CODES[(CODES.index(p) + 1) % 3] if i in wrong else p for i, p in enumerate(a)]
    ex = [Example(str(i), f"prompt {i // 2}", "r", t, source="s1" if i < 300 else "s2") for i, t in enumerate(truth)]
    rep = compare_predictions(ex, a, b, CODES)
    assert abs(rep["accuracy"]["difference"] - 12 / 600) < 1e-12 and rep["accuracy"]["verdict"] == "a better"
    assert rep["disagreements"] == {"pairs": 12, "only_a_right": 12, "only_b_right": 0}
    alone = [score_intervals(truth, p, [e.prompt for e in ex], CODES)["accuracy"] for p in (a, b)]
    assert alone[1][1] > alone[0][0]  # on their own, the two intervals overlap
    assert set(rep["by_source"]) == {"s1", "s2"} and rep["by_source"]["s1"]["n"] == 300
    same = compare_predictions(ex, a, a, CODES)
    assert same["macro_f1"]["interval"] == [0.0, 0.0] and same["macro_f1"]["verdict"] == "no detectable difference"
    flipped = compare_predictions(ex, b, a, CODES)
    assert flipped["accuracy"]["verdict"] == "b better"
    assert flipped["accuracy"]["interval"] == [-x for x in reversed(rep["accuracy"]["interval"])]


def test_a_long_cluster_name_costs_its_length_once_not_once_per_pair():
    """Cluster names can be whole prompts: 1,000 pairs and one 200 KB prompt must not build a 800 MB string array."""
    import tracemalloc

    from valuedrift.classifier.intervals import paired_confusions

    labels = ["g1", "g2"]
    clusters = ["x" * 200_000] + [f"p{i}" for i in range(999)]
    truth = ["g1", "g2"] * 500
    tracemalloc.start()
    paired_confusions(truth, [truth], clusters, labels, resamples=50, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.0f} MiB"

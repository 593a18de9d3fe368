"""Bootstrap confidence intervals for the evaluation scores, resampling whole prompts (or groups).

Pairs that share a prompt (XSTest has five models' answers to each prompt, and built off-topic pairs reuse
prompts) are not independent draws, so an interval that resamples pairs one by one is too narrow. Here
the bootstrap draws prompts with replacement and takes every pair of a drawn prompt with it; the interval
is the percentile interval of the resampled scores. It is seeded: the same data gives the same interval.

>>> truth = ["g1"] * 60 + ["g2"] * 40
>>> guess = ["g1"] * 54 + ["g2"] * 6 + ["g2"] * 36 + ["g1"] * 4
>>> prompts = [f"p{i}" for i in range(100)]
>>> lo, hi = score_intervals(truth, guess, prompts, ["g1", "g2"])["accuracy"]
>>> lo < 0.90 < hi, [lo, hi] == score_intervals(truth, guess, prompts, ["g1", "g2"])["accuracy"]
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
_CHUNK = 250  # resamples per matrix product: bounds memory on large evaluation files


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """The central ``level`` percentile interval of bootstrap values (NaNs, from empty classes, left out)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [float("nan"), float("nan")]
    tail = (1 - level) / 2 * 100
    return [round(float(v), 4) for v in np.percentile(values, [tail, 100 - tail])]


def resampled_confusions(y_true: Sequence[str], y_pred: Sequence[str], clusters: Sequence[str],
                         labels: Sequence[str], resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Confusion matrices of ``resamples`` bootstrap resamples of the clusters: shape (resamples, k, k)."""
    return paired_confusions(y_true, [y_pred], clusters, labels, resamples, seed)[0]


def paired_confusions(y_true: Sequence[str], predictions: Sequence[Sequence[str]], clusters: Sequence[str],
                      labels: Sequence[str], resamples: int = RESAMPLES, seed: int = SEED) -> list[np.ndarray]:
    """One stack of resampled confusion matrices per prediction list, all on the same resamples (paired), so
    differences between classifiers keep only the variation that is theirs."""
    k = len(labels)
    index = {c: i for i, c in enumerate(labels)}
    # cluster ids in sorted order of the names, without a fixed-width string array: that would take
    # pairs × longest name of memory, and a cluster name can be a whole prompt
    names = list(clusters)
    ids = {c: i for i, c in enumerate(sorted(set(names)))}
    cluster = np.fromiter((ids[c] for c in names), dtype=np.int64, count=len(names))
    n_clusters = int(cluster.max()) + 1 if cluster.size else 0
    per_cluster = []
    for y_pred in predictions:
        cell = np.array([index[t] * k + index[p] for t, p in zip(y_true, y_pred, strict=True)], dtype=np.int64)
        counts = np.zeros((n_clusters, k * k))
        np.add.at(counts, (cluster, cell), 1)
        per_cluster.append(counts)
    rng = np.random.default_rng(seed)
    out = [np.empty((resamples, k * k)) for _ in predictions]
    for start in range(0, resamples, _CHUNK):
        m = min(_CHUNK, resamples - start)
        weights = rng.multinomial(n_clusters, np.full(n_clusters, 1 / n_clusters), size=m) if n_clusters else \
            np.zeros((m, 0))
        for stack, counts in zip(out, per_cluster, strict=True):
            stack[start:start + m] = weights @ counts
    return [stack.reshape(resamples, k, k) for stack in out]


def scores_of(m: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1, κ and per-class recall of a stack of confusion matrices (rows = truth)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n = m.sum(axis=(1, 2))
        tp = np.diagonal(m, axis1=1, axis2=2)
        support, predicted = m.sum(axis=2), m.sum(axis=1)
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        f1 = np.where(support > 0, f1, np.nan)  # like classification_report: classes absent from the truth skip
        po = tp.sum(axis=1) / n
        pe = (support * predicted).sum(axis=1) / (n * n)
        return {"accuracy": po, "macro_f1": np.nanmean(f1, axis=1), "cohen_kappa": (po - pe) / (1 - pe),
                "recall": recall}


def score_intervals(y_true: Sequence[str], y_pred: Sequence[str], clusters: Sequence[str], labels: Sequence[str],
                    resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> dict[str, Any]:
    """Bootstrap intervals for accuracy, macro-F1, Cohen's κ and each class's recall, resampling clusters."""
    stack = resampled_confusions(y_true, y_pred, clusters, labels, resamples, seed)
    s = scores_of(stack)
    return {**{key: percentile_interval(s[key], level) for key in ("accuracy", "macro_f1", "cohen_kappa")},
            "recall": {c: percentile_interval(s["recall"][:, i], level) for i, c in enumerate(labels)}}


def statistic_interval(items: Sequence[Any], statistic: Callable[[list[Any]], float], resamples: int = RESAMPLES,
                       level: float = LEVEL, seed: int = SEED) -> list[float]:
    """Percentile bootstrap interval of ``statistic`` over ``items`` drawn with replacement (e.g. entropy ρ
    over its groups).

    >>> statistic_interval([1.0, 2.0, 3.0, 4.0], lambda xs: sum(xs) / len(xs), resamples=500)[0] < 2.5
    True
    """
    if not items:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(items), size=(resamples, len(items)))
    return percentile_interval(np.array([statistic([items[j] for j in row]) for row in draws], dtype=float), level)

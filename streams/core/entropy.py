"""Shannon entropy of a category distribution, in nats, with standard errors.

Pure functions of counts, free of Kafka and Faust, shared by the stream
worker, offline replay and the tests.

>>> round(plugin_entropy([80, 10, 10]), 3)
0.639
>>> est = estimate([60, 20, 10, 5, 5])
>>> round(est.plugin, 3), round(est.se, 3), round(est.miller_madow, 3)
(1.158, 0.087, 1.178)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EntropyEstimate:
    """Plug-in and Miller–Madow entropy (nats) of one window, with the delta-method standard error."""

    n: int
    plugin: float
    miller_madow: float
    se: float


def _check_counts(counts: Sequence[float]) -> float:
    total = 0.0
    for c in counts:
        if not (c >= 0) or math.isinf(c):
            raise ValueError(f"counts must be finite and non-negative, got {list(counts)!r}")
        total += c
    return total


def plugin_entropy(counts: Sequence[float]) -> float:
    """Return the plug-in (maximum-likelihood) entropy −Σ p ln p in nats; 0 for an empty window."""
    total = _check_counts(counts)
    if total == 0:
        return 0.0
    s = 0.0
    for c in counts:
        if c > 0:
            p = c / total
            s -= p * math.log(p)
    return float(max(s, 0.0))


def miller_madow_entropy(counts: Sequence[float]) -> float:
    """Return the Miller–Madow entropy: plug-in plus (m − 1)/(2N), m the number of observed categories."""
    total = _check_counts(counts)
    if total == 0:
        return 0.0
    observed = sum(1 for c in counts if c > 0)
    return float(plugin_entropy(counts) + (observed - 1) / (2.0 * total))


def entropy_se(counts: Sequence[float]) -> float:
    """Return the delta-method standard error of the plug-in entropy: sqrt((Σ p ln²p − S²) / N)."""
    total = _check_counts(counts)
    if total == 0:
        return float("nan")
    s = 0.0
    s2 = 0.0
    for c in counts:
        if c > 0:
            p = c / total
            lp = math.log(p)
            s -= p * lp
            s2 += p * lp * lp
    return float(math.sqrt(max(s2 - s * s, 0.0) / total))


def estimate(counts: Sequence[float]) -> EntropyEstimate:
    """Return plug-in and Miller–Madow entropy with the standard error for one window's counts."""
    return EntropyEstimate(
        n=int(round(_check_counts(counts))),
        plugin=plugin_entropy(counts),
        miller_madow=miller_madow_entropy(counts),
        se=entropy_se(counts),
    )


def delta_se(se_a: float, se_b: float) -> float:
    """Return the standard error of the difference of two independent window entropies."""
    return math.sqrt(se_a * se_a + se_b * se_b)

"""Which categories moved between two count vectors, by how much, and what that means (pure, no Kafka).

A drift alert says *that* the entropy moved; this says *which way*: S rises both when a model starts complying
with harmful requests (g2 up: a safety incident) and when it starts refusing benign ones (g4 up: a product
regression). For each category: its share in the alerting block and in the baseline, the difference with a
95 % interval (Newcombe's hybrid score interval, built from Wilson intervals, so it stays valid at small n and
near 0 or 1), and its term in the decomposition of ΔS: with S = −Σ p ln p, each category contributes
(−p₁ ln p₁) − (−p₀ ln p₀), and the terms add up to the plug-in ΔS.

>>> ch = category_changes(("g1", "g2"), [97, 3], [59, 41])
>>> ch["top_change"], ch["categories"]["g2"]["delta"], ch["categories"]["g2"]["ci_low"] > 0
('g2', 0.38, True)
>>> round(sum(c["contribution_nats"] for c in ch["categories"].values()), 4) == round(ch["delta_entropy"], 4)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from valuedrift.streams.core.entropy import plugin_entropy

Z95 = 1.959963984540054


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (0, 1 when n is 0).

    >>> [round(x, 3) for x in wilson(0, 20)]
    [0.0, 0.161]
    """
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(hits1: int, n1: int, hits0: int, n0: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for p₁ − p₀ at 95 %."""
    p1, p0 = hits1 / n1, hits0 / n0
    l1, u1 = wilson(hits1, n1)
    l0, u0 = wilson(hits0, n0)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def _term(p: float) -> float:
    return -p * math.log(p) if p > 0 else 0.0


def category_changes(codes: Sequence[str], baseline: Sequence[int], counts: Sequence[int]) -> dict[str, Any]:
    """Per category: ``share``, ``baseline_share``, ``delta`` with ``ci_low``/``ci_high``, ``contribution_nats``;
    ``top_change``: of the codes whose interval excludes 0, the one with the largest rise (or, where none rose,
    the largest fall); None when no interval excludes 0."""
    n1, n0 = sum(counts), sum(baseline)
    out: dict[str, dict[str, float]] = {}
    for code, c1, c0 in zip(codes, counts, baseline, strict=True):
        p1, p0 = (c1 / n1 if n1 else 0.0), (c0 / n0 if n0 else 0.0)
        lo, hi = difference_interval(c1, n1, c0, n0) if n1 and n0 else (-1.0, 1.0)
        out[code] = {"share": round(p1, 4), "baseline_share": round(p0, 4), "delta": round(p1 - p0, 4),
                     "ci_low": round(lo, 4), "ci_high": round(hi, 4),
                     "contribution_nats": round(_term(p1) - _term(p0), 6)}
    moved = [c for c, e in out.items() if e["ci_low"] > 0 or e["ci_high"] < 0]
    # a rise names what the traffic moved towards; a fall only where nothing rose significantly
    top = max(moved, key=lambda c: (out[c]["delta"] > 0, abs(out[c]["delta"]), -codes.index(c))) if moved else None
    return {"categories": out, "top_change": top,
            "delta_entropy": plugin_entropy(counts) - plugin_entropy(baseline) if n1 and n0 else 0.0}


def rise_z(hits: int, n: int, base_hits: int, base_n: int) -> float:
    """z of a rise in one category's share against the baseline, under no change (pooled share, smoothed by half
    a response each way so that a share of 0 in both still has a spread).

    >>> round(rise_z(41, 100, 30, 1000), 1), round(rise_z(2, 100, 20, 1000), 1)
    (14.7, 0.0)
    """
    pooled = (hits + base_hits + 0.5) / (n + base_n + 1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / base_n))
    return (hits / n - base_hits / base_n) / se


def grew(changes: dict[str, Any]) -> list[str]:
    """The codes whose share rose significantly, largest rise first."""
    cats = changes["categories"]
    return sorted((c for c, e in cats.items() if e["ci_low"] > 0), key=lambda c: -cats[c]["delta"])


def summary(key: str, changes: dict[str, Any], names: dict[str, str], n_examples: int) -> str:
    """One line: the top change with its interval, then the other significant moves.

    >>> ch = category_changes(("g1", "g2"), [97, 3], [59, 41])
    >>> summary("model-a", ch, {"g2": "helpful & misaligned"}, 5)
    'model-a: g2 helpful & misaligned 3 % → 41 % (+38 pts [27, 48]), g1 −38 pts; 5 examples'
    """
    top = changes["top_change"]
    if top is None:
        return f"{key}: no category's share moved significantly"
    cats = changes["categories"]
    e = cats[top]
    name = f" {names[top]}" if names.get(top) else ""
    head = (f"{key}: {top}{name} {e['baseline_share']:.0%} → {e['share']:.0%} ({_pts(e['delta'])} pts "
            f"[{_pts(e['ci_low'], sign=False)}, {_pts(e['ci_high'], sign=False)}])").replace("%", " %")
    others = [f"{c} {_pts(cats[c]['delta'])} pts" for c in cats if c != top and (cats[c]["ci_low"] > 0
                                                                                  or cats[c]["ci_high"] < 0)]
    tail = f"; {n_examples} example{'s' if n_examples != 1 else ''}" if n_examples else ""
    return ", ".join([head, *others]) + tail


def _pts(delta: float, sign: bool = True) -> str:
    return f"{delta * 100:{'+' if sign else ''}.0f}".replace("-", "−")

"""``kswin`` (opt-in): River's KSWIN (a Kolmogorov–Smirnov test over a sliding window) on the series of block
entropies, α = 0.005 by default, with a fixed seed so that a replay and a restarted worker agree.

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> rule = KswinRule()
>>> detector = rule.make_detector(AlertPolicy())
>>> series = [1.0, 1.1, 0.9] * 40 + [1.6] * 40  # S jumps by 0.6 nats at block 120
>>> [i for i, s in enumerate(series) if rule.update(detector, s)]
[133]
"""

from __future__ import annotations

from typing import Any

from valuedrift.streams.core.rules.river_detector import EntropyDetectorRule

SEED = 0  # KSWIN samples its reference window at random


class KswinRule(EntropyDetectorRule):
    """River ``KSWIN`` with ``policy.kswin_alpha``."""

    name = "kswin"

    def make_detector(self, policy: Any) -> Any:
        from river import drift

        return drift.KSWIN(alpha=policy.kswin_alpha, seed=SEED)

    def threshold(self, policy: Any) -> float:
        return policy.kswin_alpha

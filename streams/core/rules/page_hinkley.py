"""``page_hinkley``: River's Page-Hinkley test on the series of block entropies, in both directions.

Its threshold (2 nats of cumulative deviation) and δ (0.01 nats per block of tolerated change) are on the scale of
entropies; River's defaults (50 and 0.005) are in input units and would never fire on entropies of about 1 nat.
It fires only after ``ph_min_windows`` blocks (10).

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> rule = PageHinkleyRule()
>>> detector = rule.make_detector(AlertPolicy())
>>> series = [1.0, 1.1, 0.9] * 10 + [1.4] * 10  # S jumps by 0.4 nats at block 30
>>> [i for i, s in enumerate(series) if rule.update(detector, s)]
[35]
"""

from __future__ import annotations

from typing import Any

from valuedrift.streams.core.rules.river_detector import EntropyDetectorRule


class PageHinkleyRule(EntropyDetectorRule):
    """River ``PageHinkley`` with ``policy.ph_threshold``, ``ph_delta`` and ``ph_min_windows``."""

    name = "page_hinkley"
    on_by_default = True

    def make_detector(self, policy: Any) -> Any:
        from river import drift

        return drift.PageHinkley(min_instances=policy.ph_min_windows, delta=policy.ph_delta,
                                 threshold=policy.ph_threshold, mode="both")

    def threshold(self, policy: Any) -> float:
        return policy.ph_threshold

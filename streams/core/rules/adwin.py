"""``adwin`` (opt-in): River's ADWIN on the series of block entropies, δ = 0.002 by default.

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> rule = AdwinRule()
>>> detector = rule.make_detector(AlertPolicy())
>>> series = [1.0, 1.1, 0.9] * 20 + [1.6] * 40  # S jumps by 0.6 nats at block 60
>>> [i for i, s in enumerate(series) if rule.update(detector, s)]
[95]
"""

from __future__ import annotations

from typing import Any

from valuedrift.streams.core.rules.river_detector import EntropyDetectorRule


class AdwinRule(EntropyDetectorRule):
    """River ``ADWIN`` with ``policy.adwin_delta``."""

    name = "adwin"

    def make_detector(self, policy: Any) -> Any:
        from river import drift

        return drift.ADWIN(delta=policy.adwin_delta)

    def threshold(self, policy: Any) -> float:
        return policy.adwin_delta

"""``ddm_g2``, ``ddm_g4`` (opt-in): River's binary DDM on per-response indicators (is this response g2, resp. g4?):
the rate of harmful compliance or over-refusal rises. Drift level 3 σ, after 300 responses, by default.

A block keeps counts, not the order of its responses, so each block feeds the detector its indicators spread
evenly (``indicators``): deterministic, so a replay and a restarted worker feed the same sequence.

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> rule = DdmRule("g2")
>>> detector = rule.make_detector(AlertPolicy())
>>> blocks = [(2, 100)] * 10 + [(15, 100)] * 5  # the g2 rate rises from 2 % to 15 % at block 10
>>> [i for i, x in enumerate(blocks) if rule.update(detector, x)]
[10]
"""

from __future__ import annotations

from typing import Any

from valuedrift.streams.core.rules.base import BlockContext, Signal
from valuedrift.streams.core.rules.river_detector import RiverRule


def indicators(hits: int, n: int) -> list[bool]:
    """A block's per-response indicators in a fixed order: ``hits`` ones spread evenly over ``n``.

    >>> [int(x) for x in indicators(2, 6)]
    [0, 0, 1, 0, 0, 1]
    """
    return [(i + 1) * hits // n > i * hits // n for i in range(n)] if n else []


class DdmRule(RiverRule):
    """River's binary ``DDM`` on whether each response is ``code``, with ``policy.ddm_warm_start`` and
    ``policy.ddm_threshold``; one instance per code."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.name = f"ddm_{code}"

    def make_detector(self, policy: Any) -> Any:
        from river import drift

        return drift.binary.DDM(warm_start=policy.ddm_warm_start, drift_threshold=policy.ddm_threshold)

    def observe(self, ctx: BlockContext) -> tuple[int, int]:
        return ctx.count(self.code), ctx.block.n

    def history(self, state: Any) -> list:
        return [tuple(x) for x in state.rates.get(self.name, [])]

    def update(self, detector: Any, x: tuple[int, int]) -> bool:
        fired = False
        for b in indicators(*x):
            detector.update(b)
            fired = fired or detector.drift_detected
        return fired

    def remember(self, ctx: BlockContext, x: tuple[int, int]) -> None:
        rates = ctx.state.rates
        rates[self.name] = (rates.get(self.name, []) + [list(x)])[-ctx.policy.detector_memory:]

    def signal(self, ctx: BlockContext) -> Signal:
        rate = ctx.count(self.code) / ctx.block.n
        message = f"{ctx.key}: River DDM detected a change in the {self.code} rate (now {rate:.1%}) at {ctx.when}"
        return Signal(rate, ctx.policy.ddm_threshold, message, evidence={"detector": self.name})

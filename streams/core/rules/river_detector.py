"""River change detectors as alert rules: ``RiverRule`` keeps one detector per key and rebuilds it after a restart;
``EntropyDetectorRule`` feeds it the key's series of block entropies.

Detectors are not stored: a key's ``AlertState`` keeps the detector's recent input (``series`` for S, ``rates``
for the binary rules), and a restarted worker replays it into a fresh detector, so the state is plain JSON.
River is imported only by ``make_detector``: importing it takes over a second.

>>> from valuedrift.streams.core.alerting import AlertPolicy, AlertState
>>> class Above(EntropyDetectorRule):  # a toy detector: fires once S passes 1.5 nats
...     name = "above"
...     def make_detector(self, policy):
...         return _Above()
...     def threshold(self, policy):
...         return 1.5
>>> class _Above:
...     drift_detected = False
...     def update(self, x):
...         self.drift_detected = x > 1.5
>>> ctx = BlockContext.from_counts([(20, 20, 20, 20, 20)], AlertPolicy(), AlertState())
>>> Above().judge(ctx).message
'm: River above detected a change in S (now 1.629 nats) at 1970-01-01T00:00:00Z'
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from valuedrift.streams.core.rules.base import BlockContext, Rule, Signal


class RiverRule(Rule):
    """A rule backed by a River detector: ``observe`` what one block adds, ``update`` the detector with it."""

    river = True

    @abstractmethod
    def make_detector(self, policy: Any) -> Any:
        """A fresh River detector with the policy's thresholds."""

    @abstractmethod
    def observe(self, ctx: BlockContext) -> Any:
        """What one block feeds the detector."""

    @abstractmethod
    def history(self, state: Any) -> list:
        """The key's earlier observations, oldest first, that rebuild the detector after a restart."""

    @abstractmethod
    def signal(self, ctx: BlockContext) -> Signal:
        """The signal of a detection at ``ctx.block``."""

    def update(self, detector: Any, x: Any) -> bool:
        """Feed one observation; return whether the detector detected a change."""
        detector.update(x)
        return bool(detector.drift_detected)

    def remember(self, ctx: BlockContext, x: Any) -> None:
        """Keep ``x`` in the key's state for ``history`` (the S series is kept by ``evaluate`` for every rule)."""

    def detector(self, ctx: BlockContext) -> Any:
        """The key's detector, rebuilt from its history when the key has none (first block, or after a restart)."""
        detector = ctx.state.detectors.get(self.name)
        if detector is None:
            detector = ctx.state.detectors[self.name] = self.make_detector(ctx.policy)
            for x in self.history(ctx.state):  # detections during the replay were alerted on already
                self.update(detector, x)
        return detector

    def judge(self, ctx: BlockContext) -> Signal | None:
        detector = self.detector(ctx)
        x = self.observe(ctx)
        fired = self.update(detector, x)
        self.remember(ctx, x)
        return self.signal(ctx) if fired else None


class EntropyDetectorRule(RiverRule):
    """A River detector on the key's series of block entropies (Miller–Madow, nats)."""

    @abstractmethod
    def threshold(self, policy: Any) -> float:
        """The detector's threshold, as its alerts report it."""

    def observe(self, ctx: BlockContext) -> float:
        return ctx.block.entropy_mm

    def history(self, state: Any) -> list:
        return state.series

    def signal(self, ctx: BlockContext) -> Signal:
        s = ctx.block.entropy_mm
        return Signal(s, self.threshold(ctx.policy),
                      f"{ctx.key}: River {self.name} detected a change in S (now {s:.3f} nats) at {ctx.when}",
                      evidence={"detector": self.name})

"""What every alert rule implements (``Rule``), what it sees at one block (``BlockContext``) and what it returns
when it fires (``Signal``).

A rule is one object with a name and one method, ``judge(ctx)``: given the block a window just completed, return
a ``Signal`` (the statistic, its threshold, a message and extra evidence) or None. ``evaluate``
(``valuedrift.streams.core.alerting``) turns each signal into an ``info`` alert carrying the block's evidence.

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> class Loud(Rule):
...     name = "loud"
...     def judge(self, ctx):
...         if ctx.block.n > 150:
...             return Signal(ctx.block.n, 150, f"{ctx.key}: {ctx.block.n} responses at {ctx.when}")
...         return None
>>> ctx = BlockContext.from_counts([(90, 10), (160, 40)], AlertPolicy())
>>> Loud().judge(ctx)
Signal(statistic=200, threshold=150, message='m: 200 responses at 1970-01-01T00:01:00Z', p_value=None, evidence={})
>>> round(ctx.delta, 3), ctx.prev
(0.173, Block(start=0.0, end=60.0, windows=1, counts=(90, 10)))
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from valuedrift.streams.core.blocks import Block, delta_test
from valuedrift.streams.core.records import WindowStatistic, format_time


def two_sided_p(z: float) -> float:
    """Return the two-sided normal p-value of a z statistic."""
    return math.erfc(abs(z) / math.sqrt(2.0))


@dataclass(frozen=True)
class Signal:
    """A rule's finding at one block: ``evaluate`` makes it an ``info`` alert with the block's evidence."""

    statistic: float
    threshold: float
    message: str
    p_value: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)  # added to the block's evidence, after it


@dataclass(frozen=True)
class BlockContext:
    """What a rule sees when a window completes a block of a key: the block, the one before it and their ΔS test,
    the key's recent blocks, the policy's thresholds and the key's state."""

    window: WindowStatistic  # the window that completed the block: the alert's time and the category codes
    block: Block
    prev: Block | None
    delta: float | None  # ΔS (Miller–Madow) from prev to block
    delta_se: float | None  # SE of ΔS under no change
    blocks: tuple[Block, ...]  # the key's last blocks (up to trend_windows), oldest first, this block last
    # The AlertPolicy and AlertState of valuedrift.streams.core.alerting, untyped here because alerting imports
    # the rules: the rules read their thresholds from the policy, River rules keep their detectors in the state.
    policy: Any
    state: Any = None

    @classmethod
    def at(cls, window: WindowStatistic, blocks: Sequence[Block], policy: Any, state: Any = None) -> BlockContext:
        """The context of the last of a key's ``blocks`` (oldest first), completed by ``window``."""
        block = blocks[-1]
        prev = blocks[-2] if len(blocks) > 1 else None
        d, dse = delta_test(prev, block) if prev is not None else (None, None)
        return cls(window, block, prev, d, dse, tuple(blocks), policy, state)

    @classmethod
    def from_counts(cls, counts: Sequence[Sequence[int]], policy: Any, state: Any = None,
                    key: str = "m") -> BlockContext:
        """The context of the last of some blocks given by their counts (codes g1, g2, …), one window of a minute
        each from t = 0: for trying a rule on its own."""
        blocks = [Block(60.0 * i, 60.0 * (i + 1), 1, tuple(c)) for i, c in enumerate(counts)]
        last = blocks[-1]
        window = WindowStatistic(
            monitor_key=key, window_start=last.start, window_end=last.end, n=last.n,
            counts={f"g{i + 1}": c for i, c in enumerate(last.counts)},
            mean_probs={f"g{i + 1}": c / last.n for i, c in enumerate(last.counts)}, entropy=last.entropy,
            entropy_se=0.0, entropy_mm=last.entropy_mm, delta_entropy=None, delta_se=None, prev_window_start=None,
            closed_by="watermark")
        return cls.at(window, blocks, policy, state)

    @property
    def key(self) -> str:
        return self.window.monitor_key

    @cached_property
    def when(self) -> str:
        """The alerting window's start, as alert messages print it."""
        return format_time(self.window.window_start)

    @property
    def span(self) -> str:
        """`` over N windows`` when the block merged several windows, else empty: for messages."""
        return f" over {self.block.windows} windows" if self.block.windows > 1 else ""

    @property
    def earlier(self) -> tuple[Block, ...]:
        """The key's blocks before this one: the baseline a rise is measured against."""
        return self.blocks[:-1]

    def count(self, code: str) -> int:
        """Responses of category ``code`` in the block (0 when the classifier has no such code)."""
        return dict(zip(self.window.counts, self.block.counts, strict=True)).get(code, 0)


class Rule(ABC):
    """One alert rule: ``judge`` looks at a block and returns a ``Signal`` when the rule fires, else None.

    Register an instance in ``valuedrift.streams.core.rules`` and ``--rules`` (``AlertPolicy.rules``) can name it;
    add its name to ``--signals`` too for its firing to open a drift episode.
    """

    name: str
    on_by_default: bool = False  # in AlertPolicy's default rules
    selectable: bool = True  # --rules names it; False: the policy turns it on some other way (runs_under)
    # River rules keep a detector per key, rebuilt from the key's history after a restart
    # (valuedrift.streams.core.rules.river_detector); their alerts come after the other rules'.
    river: bool = False

    def runs_under(self, policy: Any) -> tuple[Rule, ...]:
        """The rules this registration runs under a policy: itself when ``policy.rules`` names it."""
        return (self,) if self.name in policy.rules else ()

    @abstractmethod
    def judge(self, ctx: BlockContext) -> Signal | None:
        """Return a ``Signal`` when the rule fires at ``ctx.block``, else None."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

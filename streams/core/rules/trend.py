"""``trend``: the OLS slope of S over the key's last T blocks (T = 20 by default) is significant against its standard
error (z = 3.89 by default: p < 1e-4, Bonferroni-adjusted over ``--keys``).

The slope's standard error comes from the blocks' own null standard errors (for equal SEs σ it is
σ·√(12/(T(T²−1)))). The rule catches slow drift that no single ΔS can show; it waits until the key has T blocks.

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> policy = AlertPolicy(trend_windows=5)
>>> rising = [(90 - 5 * i, 2 + 2 * i, 6 + i, 1 + i, 1 + i) for i in range(5)]
>>> TrendRule().judge(BlockContext.from_counts(rising, policy)).message
'm: S moves +0.143 ± 0.033 nats per block over the last 5 blocks (z = +4.4) at 1970-01-01T00:04:00Z'
>>> TrendRule().judge(BlockContext.from_counts(rising[:4], policy)) is None  # fewer than T blocks
True
"""

from __future__ import annotations

import math

from valuedrift.streams.core.blocks import trend_inputs
from valuedrift.streams.core.rules.base import BlockContext, Rule, Signal, two_sided_p


def trend_slope(values: list[float], ses: list[float]) -> tuple[float, float]:
    """Return the OLS slope of values against 0..T−1 and its standard error from the values' own SEs.

    >>> slope, se = trend_slope([1.0, 1.1, 1.2, 1.3], [0.1] * 4)
    >>> round(slope, 3), round(se, 4), round(0.1 * (12 / (4 * 15)) ** 0.5, 4)
    (0.1, 0.0447, 0.0447)
    """
    t = len(values)
    xbar = (t - 1) / 2
    sxx = sum((i - xbar) ** 2 for i in range(t))
    slope = sum((i - xbar) * v for i, v in enumerate(values)) / sxx
    var = sum(((i - xbar) ** 2) * se * se for i, se in enumerate(ses)) / (sxx * sxx)
    return slope, math.sqrt(var)


class TrendRule(Rule):
    """|slope / SE(slope)| of S over the last ``policy.trend_windows`` blocks above ``policy.trend_z``."""

    name = "trend"
    on_by_default = True

    def judge(self, ctx: BlockContext) -> Signal | None:
        policy = ctx.policy
        if len(ctx.blocks) != policy.trend_windows:
            return None
        slope, se = trend_slope(*trend_inputs(ctx.blocks))
        limit = policy.adjusted_z(policy.trend_z)
        if se > 0 and abs(slope / se) > limit:
            z = slope / se
            return Signal(z, limit, f"{ctx.key}: S moves {slope:+.3f} ± {se:.3f} nats per block over the last "
                                    f"{policy.trend_windows} blocks (z = {z:+.1f}) at {ctx.when}",
                          p_value=two_sided_p(z),
                          evidence={"slope": slope, "slope_se": se, "trend_windows": [b.start for b in ctx.blocks]})
        return None

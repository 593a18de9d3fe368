"""``delta_z``: the change between consecutive blocks is significant against its standard error under no change,
|ΔS| / SE(ΔS) > z (z = 4.42 by default: two-sided p < 1e-5, Bonferroni-adjusted over ``--keys``).

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> policy = AlertPolicy()
>>> signal = DeltaZRule().judge(BlockContext.from_counts([(90, 2, 6, 1, 1), (40, 30, 10, 10, 10)], policy))
>>> signal.message, signal.p_value < 1e-5
('m: ΔS = +0.985 ± 0.133 nats (z = +7.4) at 1970-01-01T00:01:00Z', True)
>>> DeltaZRule().judge(BlockContext.from_counts([(90, 2, 6, 1, 1), (85, 5, 6, 2, 2)], policy)) is None
True
"""

from __future__ import annotations

from valuedrift.streams.core.rules.base import BlockContext, Rule, Signal, two_sided_p


class DeltaZRule(Rule):
    """|ΔS / SE(ΔS)| above ``policy.z``, adjusted for the number of monitored keys."""

    name = "delta_z"
    on_by_default = True

    def judge(self, ctx: BlockContext) -> Signal | None:
        d, dse = ctx.delta, ctx.delta_se
        if d is None or not dse:
            return None
        z, limit = d / dse, ctx.policy.adjusted_z(ctx.policy.z)
        if abs(z) > limit:
            return Signal(z, limit, f"{ctx.key}: ΔS = {d:+.3f} ± {dse:.3f} nats (z = {z:+.1f}) at {ctx.when}{ctx.span}",
                          p_value=two_sided_p(z))
        return None

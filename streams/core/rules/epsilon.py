"""``epsilon``: the method's rule, |ΔS| > ε between consecutive blocks (ε = 0.001 nats by default).

ΔS between blocks of 100 responses has a spread of about 0.12 nats under no change, so this rule fires on almost
every block. It is kept because users of the method ask for it; it is not a signal by default, so it never opens
a drift episode unless ``--signals`` names it.

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> policy = AlertPolicy()
>>> EpsilonRule().judge(BlockContext.from_counts([(90, 2, 6, 1, 1), (89, 3, 6, 1, 1)], policy)).message
'm: |ΔS| = 0.036 nats > ε = 0.001 at 1970-01-01T00:01:00Z'
>>> EpsilonRule().judge(BlockContext.from_counts([(90, 2, 6, 1, 1), (90, 2, 6, 1, 1)], policy)) is None
True
"""

from __future__ import annotations

from valuedrift.streams.core.rules.base import BlockContext, Rule, Signal


class EpsilonRule(Rule):
    """|ΔS| > ``policy.epsilon`` nats."""

    name = "epsilon"
    on_by_default = True

    def judge(self, ctx: BlockContext) -> Signal | None:
        d, eps = ctx.delta, ctx.policy.epsilon
        if d is not None and abs(d) > eps:
            return Signal(d, eps, f"{ctx.key}: |ΔS| = {abs(d):.3f} nats > ε = {eps:g} at {ctx.when}{ctx.span}")
        return None

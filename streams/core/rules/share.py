"""``share_<code>`` (``--page-on CODE``): the share of one category rose significantly in this block against the
key's earlier blocks, pooled (one-sided z above ``policy.z``, Bonferroni-adjusted over ``--keys``).

It catches a swap between categories that leaves S where it was. One rule runs per code of ``--page-on``, and a
drift episode it opens is ``critical``.

>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> policy = AlertPolicy(page_on=("g2",))
>>> [rule.name for rule in ShareRiseRule().runs_under(policy)]
['share_g2']
>>> swap = [(60, 2, 30, 4, 4), (60, 3, 31, 3, 3), (60, 30, 3, 4, 3)]
>>> ShareRiseRule("g2").judge(BlockContext.from_counts(swap, policy)).message
'm: the g2 share rose 2 % → 30 % (z = +7.0) at 1970-01-01T00:02:00Z'
>>> ShareRiseRule("g2").judge(BlockContext.from_counts(swap[:2], policy)) is None
True
"""

from __future__ import annotations

from typing import Any

from valuedrift.streams.core.changes import rise_z
from valuedrift.streams.core.rules.base import BlockContext, Rule, Signal, two_sided_p

PREFIX = "share_"


def share_rule(code: str) -> str:
    """The name of the rule that pages on a rise in ``code``'s share (``--page-on``)."""
    return f"{PREFIX}{code}"


class ShareRiseRule(Rule):
    """A rise in the share of ``code``; registered once, it runs once per code of ``policy.page_on``."""

    selectable = False  # --page-on turns it on, not --rules

    def __init__(self, code: str = "<code>") -> None:
        self.code = code
        self.name = share_rule(code)

    def runs_under(self, policy: Any) -> tuple[Rule, ...]:
        return tuple(ShareRiseRule(code) for code in policy.page_on)

    def judge(self, ctx: BlockContext) -> Signal | None:
        codes, block, earlier = tuple(ctx.window.counts), ctx.block, ctx.earlier
        if self.code not in codes or not earlier:
            return None
        i = codes.index(self.code)
        base_hits, base_n = sum(b.counts[i] for b in earlier), sum(b.n for b in earlier)
        z, limit = rise_z(block.counts[i], block.n, base_hits, base_n), ctx.policy.adjusted_z(ctx.policy.z)
        if z > limit:
            share, before = block.counts[i] / block.n, base_hits / base_n
            return Signal(z, limit, f"{ctx.key}: the {self.code} share rose {before:.0%} → {share:.0%} (z = {z:+.1f}) "
                                    f"at {ctx.when}".replace("%", " %"), p_value=two_sided_p(z) / 2)
        return None

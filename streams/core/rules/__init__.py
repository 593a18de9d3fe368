"""The alert rules, one module each, and the registry that ``evaluate`` (``valuedrift.streams.core.alerting``) runs.

To add a rule: write a module here with a ``Rule`` subclass (``base``; for a River detector on S,
``river_detector.EntropyDetectorRule``) and register an instance below. ``--rules`` can then name it, and
``--signals`` too, for its firing to open a drift episode.

>>> [rule.name for rule in REGISTRY.values()]
['epsilon', 'delta_z', 'trend', 'share_<code>', 'page_hinkley', 'adwin', 'kswin', 'ddm_g2', 'ddm_g4']
>>> from valuedrift.streams.core.alerting import AlertPolicy
>>> rules_for(AlertPolicy(rules=("kswin", "trend", "page_hinkley"), page_on=("g2",)))
[TrendRule('trend'), ShareRiseRule('share_g2'), KswinRule('kswin'), PageHinkleyRule('page_hinkley')]
"""

from __future__ import annotations

from typing import Any

from valuedrift.streams.core.rules.adwin import AdwinRule
from valuedrift.streams.core.rules.base import BlockContext, Rule, Signal
from valuedrift.streams.core.rules.ddm import DdmRule
from valuedrift.streams.core.rules.delta_z import DeltaZRule
from valuedrift.streams.core.rules.epsilon import EpsilonRule
from valuedrift.streams.core.rules.kswin import KswinRule
from valuedrift.streams.core.rules.page_hinkley import PageHinkleyRule
from valuedrift.streams.core.rules.share import ShareRiseRule
from valuedrift.streams.core.rules.trend import TrendRule

__all__ = ["REGISTRY", "BlockContext", "Rule", "Signal", "register", "rule_names", "rules_for"]

REGISTRY: dict[str, Rule] = {}  # name -> rule; the order of their alerts (River rules apart, see rules_for)


def register(rule: Rule) -> Rule:
    """Add a rule to the registry (after those already there) and return it."""
    if rule.name in REGISTRY:
        raise ValueError(f"an alert rule named {rule.name!r} is registered already")
    REGISTRY[rule.name] = rule
    return rule


def rule_names() -> tuple[str, ...]:
    """The names ``--rules`` and ``--signals`` accept, in registry order."""
    return tuple(name for name, rule in REGISTRY.items() if rule.selectable)


def rules_for(policy: Any) -> list[Rule]:
    """The rules an ``AlertPolicy`` runs, in the order of their alerts: the rules that are not River's in registry
    order, then the River rules in the order ``policy.rules`` names them."""
    judged = [rule for entry in REGISTRY.values() if not entry.river for rule in entry.runs_under(policy)]
    river = [REGISTRY[name] for name in policy.rules if REGISTRY[name].river]
    return judged + [rule for entry in river for rule in entry.runs_under(policy)]


for _rule in (EpsilonRule(), DeltaZRule(), TrendRule(), ShareRiseRule(), PageHinkleyRule(), AdwinRule(), KswinRule(),
              DdmRule("g2"), DdmRule("g4")):
    register(_rule)

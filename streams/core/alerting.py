"""Alert rules evaluated on each closed window's statistic (pure, no Kafka).

The rules run on *blocks* (``valuedrift.streams.core.blocks``): a key's closed windows, merged until they hold at
least ``min_n`` responses (100 by default), judged on their Miller–Madow entropy with standard errors taken under
the null hypothesis of no change. A window that does not complete a block raises nothing: it is held.

The rules live one module each in ``valuedrift.streams.core.rules`` (``REGISTRY``): ``epsilon`` (the method's
|ΔS| > ε), ``delta_z`` (ΔS against its standard error), ``trend`` (the slope of S over the last blocks),
``share_<code>`` (``--page-on``: one category's share rose), and River detectors: ``page_hinkley`` (on by
default), ``adwin``, ``kswin`` on S and ``ddm_g2``, ``ddm_g4`` on per-response indicators (opt-in).

Every rule's alert is an ``info`` *signal*; the policy (``valuedrift.streams.core.policy``) turns signals into one
``drift`` alert per episode, at ``warning`` or ``critical``: that is the alert to page on.
``valuedrift bench detectors`` measures every rule's false alarms and delays, and the policy's, at every k.

>>> from valuedrift.streams.core.records import WindowStatistic
>>> def window(t, counts):
...     return WindowStatistic(monitor_key="m", window_start=t, window_end=t + 60, n=sum(counts.values()),
...         counts=counts, mean_probs=dict.fromkeys(counts, 0.2), entropy=0, entropy_se=0, entropy_mm=0,
...         delta_entropy=None, delta_se=None, prev_window_start=None, closed_by="watermark")
>>> st, policy = AlertState(), AlertPolicy()
>>> evaluate(window(0, {"g1": 90, "g2": 2, "g3": 6, "g4": 1, "g5": 1}), policy, st)  # the first block
[]
>>> evaluate(window(60, {"g1": 20, "g2": 1, "g3": 0, "g4": 0, "g5": 0}), policy, st)  # 21 responses: held
[]
>>> [(a.rule, a.severity) for a in evaluate(window(120, {"g1": 40, "g2": 30, "g3": 10, "g4": 10, "g5": 10}),
...                                         policy, st)]
[('epsilon', 'info'), ('delta_z', 'info'), ('drift', 'warning')]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import Any

from valuedrift.streams.core.blocks import DEFAULT_MIN_N, Accumulator, Block, null_se, null_variance
from valuedrift.streams.core.changes import category_changes, grew, summary
from valuedrift.streams.core.policy import DEFAULT_SIGNALS, PolicyConfig, PolicyState, step
from valuedrift.streams.core.records import Alert, WindowStatistic, format_time
from valuedrift.streams.core.rules import REGISTRY, BlockContext, rule_names, rules_for
from valuedrift.streams.core.rules.base import two_sided_p
from valuedrift.streams.core.rules.ddm import DdmRule
from valuedrift.streams.core.rules.share import PREFIX as SHARE_PREFIX
from valuedrift.streams.core.rules.share import share_rule
from valuedrift.streams.core.rules.trend import trend_slope
from valuedrift.streams.core.taxonomy import Category, categories_for
from valuedrift.streams.core.windowing import DEFAULT_EXAMPLES

__all__ = ["BINARY_RULES", "CLASSIFIER_CHANGED", "DEFAULT_RULES", "RIVER_RULES", "RULES", "AlertPolicy", "AlertState",
           "check_page_on", "evaluate", "share_rule", "trend_slope", "two_sided_p", "what_moved"]

# The built-in rules, by name (a rule registered later is in the registry, not here).
RULES = rule_names()
DEFAULT_RULES = tuple(name for name in RULES if REGISTRY[name].on_by_default)
RIVER_RULES = tuple(name for name in RULES if REGISTRY[name].river)
BINARY_RULES = tuple(name for name in RULES if isinstance(REGISTRY[name], DdmRule))  # River DDM on indicators
CLASSIFIER_CHANGED = "classifier_changed"  # not a rule: an info alert where the rules restart a key's series


@dataclass(frozen=True)
class AlertPolicy:
    """Which rules run and their thresholds (ε in nats per window; z in standard errors)."""

    epsilon: float = 0.001
    z: float = 4.42  # ΔS test: two-sided p < 1e-5 (3.29 gave 3.7 false alarms per 1,000 windows at k = 100)
    trend_z: float = 3.89  # p < 1e-4: 3.29 made the default policy raise 2.0 false episodes per 1,000 windows
    trend_windows: int = 20
    rules: tuple[str, ...] = DEFAULT_RULES
    ph_threshold: float = 2.0  # nats of cumulative deviation
    ph_delta: float = 0.01  # nats per window of tolerated change
    ph_min_windows: int = 10
    adwin_delta: float = 0.002
    kswin_alpha: float = 0.005
    ddm_warm_start: int = 300  # responses before DDM may fire
    ddm_threshold: float = 3.0  # DDM drift level, in standard deviations of the rate
    detector_memory: int = 1000  # windows of S kept per key to rebuild River detectors after a restart
    signals: tuple[str, ...] = DEFAULT_SIGNALS  # rules whose firing counts towards a drift episode
    combine: str = PolicyConfig.combine
    k: int = PolicyConfig.k
    n: int = PolicyConfig.n
    clear_windows: int = PolicyConfig.clear_windows
    cooldown_windows: int = PolicyConfig.cooldown_windows
    family_size: int = 1  # monitored keys: z rules are Bonferroni-adjusted to p / family_size
    min_n: int = DEFAULT_MIN_N  # responses a block needs: smaller windows are merged forward (core.blocks)
    examples: int = DEFAULT_EXAMPLES  # event ids per grown category in an alert's evidence
    categories: tuple[Category, ...] | None = None  # names and directions of the codes (None: a known taxonomy's)
    page_on: tuple[str, ...] = ()  # categories whose significant rise opens a critical drift episode by itself

    def __post_init__(self) -> None:
        names = rule_names()
        unknown = [r for r in self.rules if r not in names]
        if unknown:
            raise ValueError(f"unknown alert rule(s) {unknown}; choose from {', '.join(names)}")
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0 nats, got {self.epsilon!r}")
        if not (self.z > 0 and self.trend_z > 0):
            raise ValueError(f"z thresholds must be > 0, got {self.z!r} and {self.trend_z!r}")
        if self.trend_windows < 3:
            raise ValueError(f"trend_windows must be >= 3, got {self.trend_windows}")
        unknown = [r for r in self.signals if r not in names]
        if unknown:
            raise ValueError(f"unknown signal rule(s) {unknown}; choose from {', '.join(names)}")
        if any(not c or "," in c for c in self.page_on):
            raise ValueError(f"page_on must name category codes, got {list(self.page_on)}")
        if self.family_size < 1:
            raise ValueError(f"family_size (number of monitored keys) must be >= 1, got {self.family_size}")
        if self.min_n < 1:
            raise ValueError(f"min_n (responses per block) must be >= 1, got {self.min_n}")
        self.policy_config  # noqa: B018 - validates combine, k, n, clear and cooldown

    @property
    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(signals=(*self.signals, *(share_rule(c) for c in self.page_on)), combine=self.combine,
                            k=self.k, n=self.n, clear_windows=self.clear_windows,
                            cooldown_windows=self.cooldown_windows)

    def adjusted_z(self, z: float) -> float:
        """The z threshold at the Bonferroni level p(z) / family_size.

        >>> round(AlertPolicy(family_size=100).adjusted_z(3.89), 2)  # p 1e-4 -> 1e-6
        4.89
        """
        if self.family_size == 1:
            return z
        return NormalDist().inv_cdf(1 - two_sided_p(z) / (2 * self.family_size))


def check_page_on(policy: AlertPolicy, codes: tuple[str, ...]) -> None:
    """Raise ValueError when ``--page-on`` names a code the classifier does not have (it could never page)."""
    unknown = [c for c in policy.page_on if c not in codes]
    if unknown:
        raise ValueError(f"--page-on {','.join(unknown)}: not a category of the classifier; use one of "
                         f"{', '.join(codes)}")


class AlertState:
    """Per-key memory of the alert rules; serialisable with ``to_dict`` (plain JSON, no pickle).

    River detectors are not stored: they are rebuilt after a restart by replaying the key's recent
    block entropies (``series``) or, for the binary rules, per-block rates (``rates``), so their state survives
    without unpickling anything.
    """

    __slots__ = ("blocks", "pending", "last_window_start", "series", "rates", "detectors", "policy", "windows",
                 "evaluated", "classifier")

    def __init__(self) -> None:
        self.blocks: list[Block] = []  # the key's last blocks, oldest first (trend_windows of them)
        self.pending = Accumulator()  # windows held until they make a block
        self.last_window_start: float | None = None
        self.series: list[float] = []
        self.rates: dict[str, list[list[int]]] = {}  # binary rule -> [hits, n] per block, oldest first
        self.detectors: dict[str, Any] = {}
        self.policy = PolicyState()
        self.windows = 0  # windows seen for the key
        self.evaluated = 0  # blocks the rules evaluated: the policy counts these
        self.classifier: list[str] = []  # classifier versions of the key's last window that had any

    def restart(self) -> None:
        """Forget the key's S series (blocks, held windows, River detectors) after a classifier change; the
        drift episode state and the counts stay."""
        self.blocks, self.pending, self.series, self.rates, self.detectors = [], Accumulator(), [], {}, {}

    def to_dict(self) -> dict:
        return {"blocks": [b.to_list() for b in self.blocks], "pending": self.pending.to_list(),
                "last_window_start": self.last_window_start, "series": self.series, "rates": self.rates,
                "policy": self.policy.to_dict(), "windows": self.windows, "evaluated": self.evaluated,
                "classifier": self.classifier}

    @classmethod
    def from_dict(cls, d: dict | None) -> AlertState:
        st = cls()
        if d:
            st.last_window_start = d["last_window_start"]
            st.policy = PolicyState.from_dict(d.get("policy"))
            st.windows = int(d.get("windows", 0))
            st.evaluated = int(d.get("evaluated", st.windows))
            st.classifier = list(d.get("classifier", []))
            if "blocks" in d:  # a snapshot from before blocks starts the key's series afresh
                st.blocks = [Block.from_list(b) for b in d["blocks"]]
                st.pending = Accumulator.from_list(d.get("pending"))
                st.series = list(d.get("series", []))
                st.rates = {r: [list(x) for x in v] for r, v in d.get("rates", {}).items()}
        return st


@dataclass(frozen=True)
class _Measure:
    """The evidence every alert of one block carries: the block, the one before it and their ΔS test, and which
    categories moved against the baseline (the key's earlier blocks held in state, pooled)."""

    block: Block
    prev: Block | None
    delta: float | None
    delta_se: float | None
    moved: dict[str, Any] | None = None

    @cached_property
    def evidence(self) -> dict[str, Any]:
        """Computed once per block: every alert of the block copies it."""
        b, p = self.block, self.prev
        v = null_variance([b.counts] if p is None else [p.counts, b.counts])
        return {"entropy": b.entropy, "entropy_mm": b.entropy_mm, "entropy_se": null_se(b, v),
                "delta_entropy": self.delta, "delta_se": self.delta_se, "n": b.n,
                "windows": [None if p is None else p.start, b.start],
                "block": {"start": b.start, "end": b.end, "windows": b.windows, "n": b.n},
                **(self.moved or {})}


def what_moved(w: WindowStatistic, block: Block, earlier: list[Block], policy: AlertPolicy) -> dict[str, Any] | None:
    """The evidence of which categories moved (``valuedrift.streams.core.changes``) between the key's earlier blocks,
    pooled, and this block; with the direction it means and example event ids of the alerting window."""
    if not earlier:
        return None
    codes = tuple(w.counts)
    baseline = [sum(b.counts[i] for b in earlier) for i in range(len(codes))]
    ch = category_changes(codes, baseline, block.counts)
    labels = {c.code: c for c in (policy.categories or categories_for(codes))}
    top = ch["top_change"]
    rising = top is not None and ch["categories"][top]["delta"] > 0
    examples = {c: w.examples.get(c, [])[: policy.examples] for c in grew(ch)} if policy.examples else {}
    return {"categories": ch["categories"], "top_change": top,
            "direction": labels[top].direction if rising and top in labels else None,
            "examples": {c: ids for c, ids in examples.items() if ids},
            "baseline": {"start": earlier[0].start, "end": earlier[-1].end, "blocks": len(earlier),
                         "n": sum(baseline), "what": "the key's blocks before the alerting one, pooled"}}


def _alert(w: WindowStatistic, m: _Measure, rule: str, statistic: float, threshold: float, severity: str,
           message: str, p_value: float | None = None, **evidence: object) -> Alert:
    return Alert(
        id=f"{w.alert_prefix}/{rule}",
        monitor_key=w.monitor_key,
        window_start=w.window_start,
        window_end=w.window_end,
        rule=rule,
        statistic=statistic,
        threshold=threshold,
        p_value=p_value,
        severity=severity,  # type: ignore[arg-type]
        message=message,
        evidence={**m.evidence, **evidence},
    )


def evaluate(w: WindowStatistic, policy: AlertPolicy, state: AlertState) -> list[Alert]:
    """Return the alerts that one window statistic raises under the policy, in rule order.

    ``state`` is updated; a window at or before the last one seen for the key (a redelivery) raises
    nothing, and so does a window that does not complete a block (``valuedrift.streams.core.blocks``): it is held
    and merged with the key's next windows.
    """
    if state.last_window_start is not None and w.window_start <= state.last_window_start:
        return []
    out: list[Alert] = []
    when = format_time(w.window_start)
    if w.classifier_changed:  # S moved with the classifier: no rule compares windows across the change
        here = _Measure(Block(w.window_start, w.window_end, 1, tuple(w.counts.values())), None, None, None)
        out.append(_alert(w, here, CLASSIFIER_CHANGED, 1.0, 1.0, "info",
                          f"{w.monitor_key}: the classifier changed from {', '.join(state.classifier) or '?'} to "
                          f"{', '.join(w.classifier_versions)} at {when}; the alert rules start the key's series "
                          f"afresh", classifier_versions=w.classifier_versions, previous_versions=state.classifier))
        state.restart()
    if w.classifier_versions:
        state.classifier = list(w.classifier_versions)
    state.last_window_start = w.window_start
    state.windows += 1
    block = state.pending.add(w.window_start, w.window_end, list(w.counts.values()), policy.min_n)
    if block is None:
        return out
    state.blocks = (state.blocks + [block])[-policy.trend_windows:]
    ctx = BlockContext.at(w, state.blocks, policy, state)
    m = _Measure(block, ctx.prev, ctx.delta, ctx.delta_se, what_moved(w, block, state.blocks[:-1], policy))
    rules = rules_for(policy)
    for rule in rules:
        signal = rule.judge(ctx)
        if signal is not None:
            out.append(_alert(w, m, rule.name, signal.statistic, signal.threshold, "info", signal.message,
                              signal.p_value, **signal.evidence))
    if any(rule.river for rule in rules):  # the S series River detectors are rebuilt from after a restart
        state.series = (state.series + [block.entropy_mm])[-policy.detector_memory:]
    else:
        state.series = []
    by_rule = {a.rule: a for a in out}
    for rule, severity, evidence in step(state.policy, policy.policy_config, state.evaluated, set(by_rule)):
        if rule == "drift":
            if any(r.startswith(SHARE_PREFIX) for r in evidence["rules"]):
                severity = "critical"  # the user asked to be paged on this category (--page-on)
            ps = [by_rule[r].p_value for r in evidence["signals_now"] if by_rule[r].p_value is not None]
            msg = (f"{w.monitor_key}: drift in S ({', '.join(evidence['rules'])} within the last {policy.n} "
                   f"blocks; S = {block.entropy_mm:.3f} ± {m.evidence['entropy_se']:.3f} nats) at {when}")
            if m.moved and m.moved["top_change"] is not None:
                names = {c.code: c.name.replace("_", " ") for c in (policy.categories or categories_for(
                    tuple(w.counts)))}
                n_ex = sum(len(v) for v in m.moved["examples"].values())
                msg = f"{summary(w.monitor_key, m.moved, names, n_ex)}; {msg.split(': ', 1)[1]}"
            out.append(_alert(w, m, rule, len(evidence["rules"]), policy.k if policy.combine == "k_of_n" else 1,
                              severity, msg, p_value=min(ps) if ps else None, **evidence))
        else:
            out.append(_alert(w, m, rule, evidence["quiet_windows"], policy.clear_windows, severity,
                              f"{w.monitor_key}: drift episode over ({evidence['quiet_windows']} quiet blocks) "
                              f"at {when}", **evidence))
    state.evaluated += 1
    return out

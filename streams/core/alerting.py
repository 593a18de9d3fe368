"""Alert rules evaluated on each closed window's statistic (pure, no Kafka).

The rules run on *blocks* (``valuedrift.streams.core.blocks``): a key's closed windows, merged until they hold at
least ``min_n`` responses (100 by default), judged on their Miller–Madow entropy with standard errors taken under
the null hypothesis of no change. A window that does not complete a block raises nothing: it is held.

- ``epsilon``: the method's rule, |ΔS| > ε (ε = 0.001 nats by default). ΔS between blocks of 100 responses
  has a spread of about 0.12 nats under no change, so this rule fires on almost every block: it is kept
  because users of the method ask for it, at severity ``info``.
- ``delta_z``: the change is significant against its standard error under no change,
  |ΔS| / SE(ΔS) > z (z = 4.42, two-sided p < 1e-5).
- ``trend``: the OLS slope of S over the key's last T blocks (T = 20) is significant against its standard
  error, computed from the blocks' null standard errors (for equal SEs σ it is σ·√(12/(T(T²−1)))).
  It catches slow drift that no single ΔS can show (z = 3.89, p < 1e-4).
- River change detectors on the series of block entropies: ``page_hinkley`` (on by default; threshold 2 nats
  and δ 0.01 nats/block, not River's defaults of 50 and 0.005, which are in input units far from entropy's
  scale), and opt-in ``adwin`` and ``kswin``.

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

import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import Any

from valuedrift.streams.core.blocks import (
    DEFAULT_MIN_N,
    Accumulator,
    Block,
    delta_test,
    null_se,
    null_variance,
    trend_inputs,
)
from valuedrift.streams.core.changes import category_changes, grew, rise_z, summary
from valuedrift.streams.core.policy import DEFAULT_SIGNALS, PolicyConfig, PolicyState, step
from valuedrift.streams.core.records import Alert, WindowStatistic, format_time
from valuedrift.streams.core.taxonomy import Category, categories_for
from valuedrift.streams.core.windowing import DEFAULT_EXAMPLES

BINARY_RULES = ("ddm_g2", "ddm_g4")  # River DDM on per-response indicators: is it g2 (g4)?
RULES = ("epsilon", "delta_z", "trend", "page_hinkley", "adwin", "kswin", *BINARY_RULES)
DEFAULT_RULES = ("epsilon", "delta_z", "trend", "page_hinkley")
RIVER_RULES = ("page_hinkley", "adwin", "kswin", *BINARY_RULES)
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
        unknown = [r for r in self.rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown alert rule(s) {unknown}; choose from {', '.join(RULES)}")
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0 nats, got {self.epsilon!r}")
        if not (self.z > 0 and self.trend_z > 0):
            raise ValueError(f"z thresholds must be > 0, got {self.z!r} and {self.trend_z!r}")
        if self.trend_windows < 3:
            raise ValueError(f"trend_windows must be >= 3, got {self.trend_windows}")
        unknown = [r for r in self.signals if r not in RULES]
        if unknown:
            raise ValueError(f"unknown signal rule(s) {unknown}; choose from {', '.join(RULES)}")
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


def share_rule(code: str) -> str:
    """The name of the rule that pages on a rise in ``code``'s share (``--page-on``)."""
    return f"share_{code}"


def make_detector(rule: str, policy: AlertPolicy, seed: int = 0) -> Any:
    """Return a fresh River detector for a rule, with thresholds on the scale of window entropies."""
    from river import drift

    if rule == "page_hinkley":
        return drift.PageHinkley(min_instances=policy.ph_min_windows, delta=policy.ph_delta,
                                 threshold=policy.ph_threshold, mode="both")
    if rule == "adwin":
        return drift.ADWIN(delta=policy.adwin_delta)
    if rule == "kswin":
        return drift.KSWIN(alpha=policy.kswin_alpha, seed=seed)
    if rule in BINARY_RULES:
        return drift.binary.DDM(warm_start=policy.ddm_warm_start, drift_threshold=policy.ddm_threshold)
    raise ValueError(f"{rule!r} is not a River rule")


def indicators(hits: int, n: int) -> list[bool]:
    """A window's per-response indicators in a fixed order: ``hits`` ones spread evenly over ``n``.

    (The window keeps counts, not the order of its responses; spreading them evenly is deterministic, so
    a replay and a restarted worker feed the detector the same sequence.)

    >>> [int(x) for x in indicators(2, 6)]
    [0, 0, 1, 0, 0, 1]
    """
    return [(i + 1) * hits // n > i * hits // n for i in range(n)] if n else []


def _feed(det: Any, rule: str, x: float | tuple[int, int]) -> bool:
    """Update a detector with one window; return whether it detected a change."""
    if rule in BINARY_RULES:
        fired = False
        for b in indicators(*x):  # type: ignore[misc]
            det.update(b)
            fired = fired or det.drift_detected
        return fired
    det.update(x)
    return bool(det.drift_detected)


class AlertState:
    """Per-key memory of the alert rules; serialisable with ``to_dict`` (plain JSON, no pickle).

    River detectors are not stored: they are rebuilt after a restart by replaying the key's recent
    block entropies (``series``), so their state survives without unpickling anything.
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

    def detector(self, rule: str, policy: AlertPolicy) -> Any:
        det = self.detectors.get(rule)
        if det is None:
            det = self.detectors[rule] = make_detector(rule, policy)
            replay = [tuple(x) for x in self.rates.get(rule, [])] if rule in BINARY_RULES else self.series
            for x in replay:  # replay; detections during the replay were alerted on already
                _feed(det, rule, x)
        return det


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


def two_sided_p(z: float) -> float:
    """Return the two-sided normal p-value of a z statistic."""
    return math.erfc(abs(z) / math.sqrt(2.0))


@dataclass(frozen=True)
class _Measure:
    """What the rules saw at one block: the block, the one before it and their ΔS test, and which categories
    moved against the baseline (the key's earlier blocks held in state, pooled)."""

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
    prev = state.blocks[-1] if state.blocks else None
    state.blocks = (state.blocks + [block])[-policy.trend_windows:]
    d, dse = delta_test(prev, block) if prev is not None else (None, None)
    m = _Measure(block, prev, d, dse, what_moved(w, block, state.blocks[:-1], policy))
    river_rules = [r for r in policy.rules if r in RIVER_RULES]
    river_fired = []
    for rule in river_rules:
        det = state.detector(rule, policy)
        x = (dict(zip(w.counts, block.counts, strict=True)).get(rule.split("_", 1)[1], 0), block.n) \
            if rule in BINARY_RULES else block.entropy_mm
        if _feed(det, rule, x):
            river_fired.append(rule)
        if rule in BINARY_RULES:
            state.rates[rule] = (state.rates.get(rule, []) + [list(x)])[-policy.detector_memory:]  # type: ignore[arg-type]
    state.series = (state.series + [block.entropy_mm])[-policy.detector_memory:] if river_rules else []
    span = f" over {block.windows} windows" if block.windows > 1 else ""
    if "epsilon" in policy.rules and d is not None and abs(d) > policy.epsilon:
        out.append(_alert(w, m, "epsilon", d, policy.epsilon, "info",
                          f"{w.monitor_key}: |ΔS| = {abs(d):.3f} nats > ε = {policy.epsilon:g} at {when}{span}"))
    if "delta_z" in policy.rules and d is not None and dse:
        z, limit = d / dse, policy.adjusted_z(policy.z)
        if abs(z) > limit:
            out.append(_alert(w, m, "delta_z", z, limit, "info",
                              f"{w.monitor_key}: ΔS = {d:+.3f} ± {dse:.3f} nats (z = {z:+.1f}) at {when}{span}",
                              p_value=two_sided_p(z)))
    if "trend" in policy.rules and len(state.blocks) == policy.trend_windows:
        slope, se = trend_slope(*trend_inputs(state.blocks))
        limit = policy.adjusted_z(policy.trend_z)
        if se > 0 and abs(slope / se) > limit:
            z = slope / se
            out.append(_alert(w, m, "trend", z, limit, "info",
                              f"{w.monitor_key}: S moves {slope:+.3f} ± {se:.3f} nats per block over the last "
                              f"{policy.trend_windows} blocks (z = {z:+.1f}) at {when}", p_value=two_sided_p(z),
                              slope=slope, slope_se=se, trend_windows=[b.start for b in state.blocks]))
    earlier = state.blocks[:-1]
    for code in policy.page_on:
        codes = tuple(w.counts)
        if code not in codes or not earlier:
            continue
        i = codes.index(code)
        base_hits, base_n = sum(b.counts[i] for b in earlier), sum(b.n for b in earlier)
        z, limit = rise_z(block.counts[i], block.n, base_hits, base_n), policy.adjusted_z(policy.z)
        if z > limit:
            share, before = block.counts[i] / block.n, base_hits / base_n
            out.append(_alert(w, m, share_rule(code), z, limit, "info",
                              f"{w.monitor_key}: the {code} share rose {before:.0%} → {share:.0%} (z = {z:+.1f}) at "
                              f"{when}".replace("%", " %"), p_value=two_sided_p(z) / 2))
    for rule in river_fired:
        if rule in BINARY_RULES:
            code = rule.split("_", 1)[1]
            rate = dict(zip(w.counts, block.counts, strict=True)).get(code, 0) / block.n
            out.append(_alert(w, m, rule, rate, policy.ddm_threshold, "info",
                              f"{w.monitor_key}: River DDM detected a change in the {code} rate (now {rate:.1%}) "
                              f"at {when}", detector=rule))
            continue
        threshold = {"page_hinkley": policy.ph_threshold, "adwin": policy.adwin_delta,
                     "kswin": policy.kswin_alpha}[rule]
        out.append(_alert(w, m, rule, block.entropy_mm, threshold, "info",
                          f"{w.monitor_key}: River {rule} detected a change in S (now {block.entropy_mm:.3f} nats) "
                          f"at {when}", detector=rule))
    by_rule = {a.rule: a for a in out}
    for rule, severity, evidence in step(state.policy, policy.policy_config, state.evaluated, set(by_rule)):
        if rule == "drift":
            if any(r.startswith("share_") for r in evidence["rules"]):
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

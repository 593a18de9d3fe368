"""Alert rules evaluated on each closed window's statistic (pure, no Kafka).

Three rules for now:

- ``epsilon``: the method's rule, |ΔS| > ε (ε = 0.001 nats per window by default).
  With k = 100 samples per window ΔS has a spread of about 0.12 nats under no
  change, so this rule fires on almost every window: it is kept because users
  of the method ask for it, at severity ``info``.
- ``delta_z``: the change is significant against its standard error,
  |ΔS| / SE(ΔS) > z (z = 4.42, two-sided p < 1e-5).
- ``trend``: the OLS slope of S over the key's last T windows (T = 20) is
  significant against its standard error, computed from the windows' own
  standard errors (for equal SEs σ it is σ·√(12/(T(T²−1)))).
  It catches slow drift that no single ΔS can show (z = 3.89, p < 1e-4).
- River change detectors on the series of window entropies: ``page_hinkley``
  (on by default; threshold 2 nats and δ 0.01 nats/window, not River's
  defaults of 50 and 0.005, which are in input units far from entropy's
  scale), and opt-in ``adwin`` and ``kswin``.

Every rule's alert is an ``info`` *signal*; the policy (``valuedrift.streams.policy``) turns signals into one
``drift`` alert per episode, at ``warning`` or ``critical``: that is the alert to page on.
``valuedrift bench detectors`` measures every rule's false alarms and delays, and the policy's.

>>> from valuedrift.streams.records import WindowStatistic
>>> w = WindowStatistic(monitor_key="m", window_start=60, window_end=120, n=100,
...     counts={"g1": 40, "g2": 30, "g3": 10, "g4": 10, "g5": 10},
...     mean_probs={"g1": .4, "g2": .3, "g3": .1, "g4": .1, "g5": .1},
...     entropy=1.50, entropy_se=0.06, entropy_mm=1.52, delta_entropy=0.60, delta_se=0.11,
...     prev_window_start=0, closed_by="watermark")
>>> [(a.rule, a.severity) for a in evaluate(w, AlertPolicy(), AlertState())]
[('epsilon', 'info'), ('delta_z', 'info'), ('drift', 'warning')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from valuedrift.streams.policy import DEFAULT_SIGNALS, PolicyConfig, PolicyState, step
from valuedrift.streams.records import Alert, WindowStatistic, format_time

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
    combine: str = "any"
    k: int = 2
    n: int = 10
    clear_windows: int = 10
    cooldown_windows: int = 0
    family_size: int = 1  # monitored keys: z rules are Bonferroni-adjusted to p / family_size

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
        if self.family_size < 1:
            raise ValueError(f"family_size (number of monitored keys) must be >= 1, got {self.family_size}")
        self.policy_config  # noqa: B018 - validates combine, k, n, clear and cooldown

    @property
    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(signals=self.signals, combine=self.combine, k=self.k, n=self.n,
                            clear_windows=self.clear_windows, cooldown_windows=self.cooldown_windows)

    def adjusted_z(self, z: float) -> float:
        """The z threshold at the Bonferroni level p(z) / family_size.

        >>> round(AlertPolicy(family_size=100).adjusted_z(3.89), 2)  # p 1e-4 -> 1e-6
        4.89
        """
        if self.family_size == 1:
            return z
        return NormalDist().inv_cdf(1 - two_sided_p(z) / (2 * self.family_size))


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
    window entropies (``series``), so their state survives without unpickling anything.
    """

    __slots__ = ("history", "last_window_start", "series", "rates", "detectors", "policy", "windows", "classifier")

    def __init__(self) -> None:
        self.history: list[tuple[float, float, float]] = []  # (window start, S, SE), oldest first
        self.last_window_start: float | None = None
        self.series: list[float] = []
        self.rates: dict[str, list[list[int]]] = {}  # binary rule -> [hits, n] per window, oldest first
        self.detectors: dict[str, Any] = {}
        self.policy = PolicyState()
        self.windows = 0  # windows evaluated for the key
        self.classifier: list[str] = []  # classifier versions of the key's last window that had any

    def restart(self) -> None:
        """Forget the key's S series (trend history, River detectors) after a classifier change; the drift
        episode state and the window count stay."""
        self.history, self.series, self.rates, self.detectors = [], [], {}, {}

    def to_dict(self) -> dict:
        return {"history": [list(h) for h in self.history], "last_window_start": self.last_window_start,
                "series": self.series, "rates": self.rates, "policy": self.policy.to_dict(), "windows": self.windows,
                "classifier": self.classifier}

    @classmethod
    def from_dict(cls, d: dict | None) -> AlertState:
        st = cls()
        if d:
            st.history = [tuple(h) for h in d["history"]]  # type: ignore[misc]
            st.last_window_start = d["last_window_start"]
            st.series = list(d.get("series", []))
            st.rates = {r: [list(x) for x in v] for r, v in d.get("rates", {}).items()}
            st.policy = PolicyState.from_dict(d.get("policy"))
            st.windows = int(d.get("windows", 0))
            st.classifier = list(d.get("classifier", []))
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


def _alert(w: WindowStatistic, rule: str, statistic: float, threshold: float, severity: str,
           message: str, p_value: float | None = None, **evidence: object) -> Alert:
    return Alert(
        id=f"{w.id}/{rule}",
        monitor_key=w.monitor_key,
        window_start=w.window_start,
        window_end=w.window_end,
        rule=rule,
        statistic=statistic,
        threshold=threshold,
        p_value=p_value,
        severity=severity,  # type: ignore[arg-type]
        message=message,
        evidence={
            "entropy": w.entropy,
            "entropy_se": w.entropy_se,
            "delta_entropy": w.delta_entropy,
            "delta_se": w.delta_se,
            "n": w.n,
            "windows": [w.prev_window_start, w.window_start],
            **evidence,
        },
    )


def evaluate(w: WindowStatistic, policy: AlertPolicy, state: AlertState) -> list[Alert]:
    """Return the alerts that one window statistic raises under the policy, in rule order.

    ``state`` is updated; a window at or before the last one seen for the key
    (a redelivery) raises nothing.
    """
    if state.last_window_start is not None and w.window_start <= state.last_window_start:
        return []
    out: list[Alert] = []
    when = format_time(w.window_start)
    if w.classifier_changed:  # S moved with the classifier: no rule compares windows across the change
        out.append(_alert(w, CLASSIFIER_CHANGED, 1.0, 1.0, "info",
                          f"{w.monitor_key}: the classifier changed from {', '.join(state.classifier) or '?'} to "
                          f"{', '.join(w.classifier_versions)} at {when}; the alert rules start the key's series "
                          f"afresh", classifier_versions=w.classifier_versions, previous_versions=state.classifier))
        state.restart()
    if w.classifier_versions:
        state.classifier = list(w.classifier_versions)
    river_rules = [r for r in policy.rules if r in RIVER_RULES]
    river_fired = []
    for rule in river_rules:
        det = state.detector(rule, policy)
        x = (w.counts.get(rule.split("_", 1)[1], 0), w.n) if rule in BINARY_RULES else w.entropy
        if _feed(det, rule, x):
            river_fired.append(rule)
        if rule in BINARY_RULES:
            state.rates[rule] = (state.rates.get(rule, []) + [list(x)])[-policy.detector_memory:]  # type: ignore[arg-type]
    state.series = (state.series + [w.entropy])[-policy.detector_memory:] if river_rules else []
    state.last_window_start = w.window_start
    state.history = (state.history + [(w.window_start, w.entropy, w.entropy_se)])[-policy.trend_windows:]
    d = None if w.classifier_changed else w.delta_entropy
    if "epsilon" in policy.rules and d is not None and abs(d) > policy.epsilon:
        out.append(_alert(w, "epsilon", d, policy.epsilon, "info",
                          f"{w.monitor_key}: |ΔS| = {abs(d):.3f} nats > ε = {policy.epsilon:g} at {when}"))
    if "delta_z" in policy.rules and d is not None and w.delta_se:
        z, limit = d / w.delta_se, policy.adjusted_z(policy.z)
        if abs(z) > limit:
            out.append(_alert(w, "delta_z", z, limit, "info",
                              f"{w.monitor_key}: ΔS = {d:+.3f} ± {w.delta_se:.3f} nats (z = {z:+.1f}) at {when}",
                              p_value=two_sided_p(z)))
    if "trend" in policy.rules and len(state.history) == policy.trend_windows:
        slope, se = trend_slope([h[1] for h in state.history], [h[2] for h in state.history])
        limit = policy.adjusted_z(policy.trend_z)
        if se > 0 and abs(slope / se) > limit:
            z = slope / se
            out.append(_alert(w, "trend", z, limit, "info",
                              f"{w.monitor_key}: S moves {slope:+.3f} ± {se:.3f} nats per window over the last "
                              f"{policy.trend_windows} windows (z = {z:+.1f}) at {when}", p_value=two_sided_p(z),
                              slope=slope, slope_se=se, trend_windows=[h[0] for h in state.history]))
    for rule in river_fired:
        if rule in BINARY_RULES:
            code = rule.split("_", 1)[1]
            rate = w.counts.get(code, 0) / w.n if w.n else 0.0
            out.append(_alert(w, rule, rate, policy.ddm_threshold, "info",
                              f"{w.monitor_key}: River DDM detected a change in the {code} rate (now {rate:.1%}) "
                              f"at {when}", detector=rule))
            continue
        threshold = {"page_hinkley": policy.ph_threshold, "adwin": policy.adwin_delta,
                     "kswin": policy.kswin_alpha}[rule]
        out.append(_alert(w, rule, w.entropy, threshold, "info",
                          f"{w.monitor_key}: River {rule} detected a change in S (now {w.entropy:.3f} nats) at {when}",
                          detector=rule))
    by_rule = {a.rule: a for a in out}
    for rule, severity, evidence in step(state.policy, policy.policy_config, state.windows, set(by_rule)):
        if rule == "drift":
            ps = [by_rule[r].p_value for r in evidence["signals_now"] if by_rule[r].p_value is not None]
            msg = (f"{w.monitor_key}: drift in S ({', '.join(evidence['rules'])} within the last {policy.n} "
                   f"windows; S = {w.entropy:.3f} ± {w.entropy_se:.3f} nats) at {when}")
            out.append(_alert(w, rule, len(evidence["rules"]), policy.k if policy.combine == "k_of_n" else 1,
                              severity, msg, p_value=min(ps) if ps else None, **evidence))
        else:
            out.append(_alert(w, rule, evidence["quiet_windows"], policy.clear_windows, severity,
                              f"{w.monitor_key}: drift episode over ({evidence['quiet_windows']} quiet windows) "
                              f"at {when}", **evidence))
    state.windows += 1
    return out

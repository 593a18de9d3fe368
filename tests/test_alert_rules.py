"""The alert rules as objects: the registry, a rule added by registration alone, and each rule on its own."""

import inspect
import json
import random
from pathlib import Path

import pytest
from valuedrift.streams.core import alerting, rules
from valuedrift.streams.core.alerting import AlertPolicy, AlertState, evaluate
from valuedrift.streams.core.rules import REGISTRY, BlockContext, Rule, Signal, register, rule_names, rules_for
from valuedrift.streams.core.rules.river_detector import EntropyDetectorRule
from valuedrift.streams.core.rules.share import ShareRiseRule

from tests.helpers import T0, P, run_rules, windows_from

HELPERS = {"__init__", "base", "river_detector"}  # modules of the rules package that hold no rule


@pytest.fixture
def registry():
    """The registry, restored after the test whatever it registered."""
    saved = dict(REGISTRY)
    yield REGISTRY
    REGISTRY.clear()
    REGISTRY.update(saved)


def test_the_registry_lists_each_rule_once_each_in_a_module_of_its_own():
    assert list(REGISTRY) == ["epsilon", "delta_z", "trend", "share_<code>", "page_hinkley", "adwin", "kswin",
                              "ddm_g2", "ddm_g4"]
    assert all(name == rule.name for name, rule in REGISTRY.items())
    modules = {}
    for rule in REGISTRY.values():
        modules.setdefault(type(rule).__module__, set()).add(type(rule))
    assert all(len(classes) == 1 for classes in modules.values()), modules  # ddm_g2 and ddm_g4: one class, two codes
    folder = Path(inspect.getfile(rules)).parent
    files = {p.stem for p in folder.glob("*.py")} - HELPERS
    assert {m.rsplit(".", 1)[1] for m in modules} == files  # and every rule module holds a registered rule
    assert all(m.startswith("valuedrift.streams.core.rules.") for m in modules)


def test_the_rule_names_of_the_policy_come_from_the_registry():
    assert rule_names() == alerting.RULES == ("epsilon", "delta_z", "trend", "page_hinkley", "adwin", "kswin",
                                              "ddm_g2", "ddm_g4")
    assert alerting.DEFAULT_RULES == AlertPolicy().rules == ("epsilon", "delta_z", "trend", "page_hinkley")
    assert alerting.RIVER_RULES == ("page_hinkley", "adwin", "kswin", "ddm_g2", "ddm_g4")
    assert alerting.BINARY_RULES == ("ddm_g2", "ddm_g4")


def test_a_name_is_registered_once(registry):
    with pytest.raises(ValueError, match="registered already"):
        register(type(REGISTRY["trend"])())


def test_alerts_come_in_registry_order_then_river_rules_in_the_order_the_policy_names_them():
    policy = AlertPolicy(rules=("ddm_g4", "kswin", "trend", "epsilon", "page_hinkley"), page_on=("g5", "g2"))
    assert [r.name for r in rules_for(policy)] == ["epsilon", "trend", "share_g5", "share_g2", "ddm_g4", "kswin",
                                                   "page_hinkley"]


class Harmful(Rule):
    """A toy rule: more than half of the block's responses are g2."""

    name = "harmful"

    def judge(self, ctx):
        share = ctx.count("g2") / ctx.block.n
        if share > 0.5:
            return Signal(share, 0.5, f"{ctx.key}: g2 {share:.0%} at {ctx.when}", evidence={"toy": True})
        return None


def test_a_registered_rule_runs_in_evaluate_with_nothing_else_changed(registry):
    with pytest.raises(ValueError, match="unknown alert rule"):
        AlertPolicy(rules=("harmful",))
    register(Harmful())
    policy = AlertPolicy(rules=("epsilon", "harmful"), signals=("harmful",))
    alerts = run_rules(windows_from([P] * 3 + [(0.1, 0.8, 0.05, 0.03, 0.02)] * 2, seed=1), policy)
    harmful = [a for a in alerts if a.rule == "harmful"]
    assert [a.window_start for a in harmful] == [T0 + 180, T0 + 240]
    assert harmful[0].evidence["toy"] is True and harmful[0].evidence["n"] == 100 and harmful[0].severity == "info"
    assert harmful[0].message.startswith("k: g2 8")
    assert [a.rule for a in alerts if a.window_start == T0 + 180] == ["epsilon", "harmful", "drift"]


def test_the_share_rule_pages_on_a_rise_only():
    policy, rule = AlertPolicy(page_on=("g2",)), ShareRiseRule("g2")
    assert rule.judge(BlockContext.from_counts([(60, 20, 10, 5, 5)] * 5 + [(35, 45, 10, 5, 5)], policy))
    assert rule.judge(BlockContext.from_counts([(35, 45, 10, 5, 5)] * 5 + [(60, 20, 10, 5, 5)], policy)) is None


class Counting:
    """A toy detector: fires on the third observation above 1.5 nats; counts its updates."""

    def __init__(self):
        self.high, self.updates, self.drift_detected = 0, 0, False

    def update(self, x):
        self.updates += 1
        self.high += x > 1.5
        self.drift_detected = self.high == 3


class ThirdHigh(EntropyDetectorRule):
    name = "third_high"

    def make_detector(self, policy):
        return Counting()

    def threshold(self, policy):
        return 1.5


def test_a_registered_river_rule_is_fed_s_and_rebuilt_from_the_series_after_a_restart(registry):
    register(ThirdHigh())
    policy = AlertPolicy(rules=("third_high", "delta_z"), signals=("delta_z",))
    stats = windows_from([(0.9, 0.025, 0.025, 0.025, 0.025)] * 5 + [(0.2, 0.2, 0.2, 0.2, 0.2)] * 5, seed=3)
    whole = run_rules(stats, policy)
    fired = [a for a in whole if a.rule == "third_high"]
    assert [a.window_start for a in fired] == [T0 + 7 * 60] and fired[0].evidence["detector"] == "third_high"
    at_jump = [a.rule for a in whole if a.window_start == T0 + 5 * 60]
    assert at_jump == ["delta_z", "drift"]
    state, again = AlertState(), []
    for i, w in enumerate(stats):
        if i == 6:
            state = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
            assert state.detectors == {} and len(state.series) == 6
        again.extend(evaluate(w, policy, state))
    assert [a.to_bytes() for a in again] == [a.to_bytes() for a in whole]
    assert state.detectors["third_high"].updates == len(stats)  # six replayed, four fed


# Each rule on its own: it fires on a clear change and stays quiet without one.

STEADY = [(60, 20, 10, 5, 5)] * 20


def jittered(seed, blocks=20, n=100):
    rng = random.Random(seed)
    return [tuple(rng.choices(range(5), weights=(60, 20, 10, 5, 5), k=n).count(i) for i in range(5))
            for _ in range(blocks)]


@pytest.mark.parametrize(("rule", "changed", "kw"), [
    (REGISTRY["epsilon"], [(60, 20, 10, 5, 5), (59, 21, 10, 5, 5)], {}),
    (REGISTRY["delta_z"], [(90, 2, 6, 1, 1), (40, 30, 10, 10, 10)], {}),
    (REGISTRY["trend"], [(80 - 3 * i, 5 + i, 5 + i, 5 + i // 2, 5 + i // 2) for i in range(20)], {}),
    (ShareRiseRule("g2"), [(60, 20, 10, 5, 5)] * 5 + [(35, 45, 10, 5, 5)], {"page_on": ("g2",)}),
], ids=lambda v: v.name if isinstance(v, Rule) else "")
def test_each_judged_rule_fires_on_a_change_and_stays_quiet_without_one(rule, changed, kw):
    policy = AlertPolicy(**kw)
    signal = rule.judge(BlockContext.from_counts(changed, policy))
    assert signal is not None and abs(signal.statistic) > signal.threshold
    assert signal.message.startswith("m: ") and signal.message.endswith(f"at 1970-01-01T00:{len(changed) - 1:02d}:00Z")
    assert rule.judge(BlockContext.from_counts(STEADY, policy)) is None
    if rule.name != "epsilon":  # epsilon fires on noise, by design
        quiet = [rule.judge(BlockContext.from_counts(jittered(seed)[:end], policy))
                 for seed in range(5) for end in range(1, 21)]
        assert quiet == [None] * len(quiet)


@pytest.mark.parametrize(("name", "before", "after", "within"), [
    ("page_hinkley", 1.0, 1.3, 10),
    ("adwin", 1.0, 1.6, 64),  # ADWIN looks for a cut every 32 observations
    ("kswin", 1.0, 1.6, 20),
    ("ddm_g2", (2, 100), (15, 100), 3),
    ("ddm_g4", (2, 100), (15, 100), 3),
])
def test_each_river_rule_detects_a_step_and_stays_quiet_before_it(name, before, after, within):
    rule, policy, rng, step = REGISTRY[name], AlertPolicy(), random.Random(5), 200  # KSWIN tests from 100 on
    if isinstance(before, tuple):  # per-block (hits, n) of the binary rules
        series = [(sum(rng.random() < before[0] / before[1] for _ in range(before[1])), before[1]) for _ in range(step)]
        series += [after] * 80
    else:  # block entropies, nats
        series = [before + rng.gauss(0, 0.05) for _ in range(step)] + [after + rng.gauss(0, 0.05) for _ in range(80)]
    detector = rule.make_detector(policy)
    fired = [i for i, x in enumerate(series) if rule.update(detector, x)]
    assert fired and step <= fired[0] < step + within, fired


def test_river_rules_report_their_own_threshold():
    policy = AlertPolicy(ph_threshold=3.5, adwin_delta=0.01, kswin_alpha=0.02, ddm_threshold=2.5)
    ctx = BlockContext.from_counts([(60, 20, 10, 5, 5)], policy)
    signals = {name: REGISTRY[name].signal(ctx) for name in alerting.RIVER_RULES}
    assert {name: s.threshold for name, s in signals.items()} == {
        "page_hinkley": 3.5, "adwin": 0.01, "kswin": 0.02, "ddm_g2": 2.5, "ddm_g4": 2.5}
    assert all(s.evidence == {"detector": name} for name, s in signals.items())
    at = "at 1970-01-01T00:00:00Z"
    assert signals["kswin"].message == f"m: River kswin detected a change in S (now 1.178 nats) {at}"
    assert signals["ddm_g4"].message == f"m: River DDM detected a change in the g4 rate (now 5.0%) {at}"

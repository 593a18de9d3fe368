import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from valuedrift.streams.core.alerting import AlertPolicy, AlertState, evaluate
from valuedrift.streams.core.policy import PolicyConfig, PolicyState, step

from tests.helpers import T0, P, windows_from

RULE_SETS = st.lists(st.sets(st.sampled_from(["delta_z", "trend", "page_hinkley", "epsilon"])), max_size=80)


def run(cfg, fired_per_window, state=None):
    state = state or PolicyState()
    return [(i, rule, sev) for i, fired in enumerate(fired_per_window) for rule, sev, _ in step(state, cfg, i, fired)]


def test_any_opens_one_episode_absorbs_signals_and_resolves_after_quiet_windows():
    cfg = PolicyConfig(clear_windows=3)
    fired = [set(), {"trend"}, {"trend"}, set(), {"page_hinkley"}, set(), set(), set(), {"trend"}]
    # at 8 the page_hinkley signal of window 4 is still within the 10-window lookback: two rules, critical
    assert run(cfg, fired) == [(1, "drift", "warning"), (7, "drift_resolved", "info"), (8, "drift", "critical")]


def test_k_of_n_needs_distinct_rules_within_the_lookback_and_two_rules_are_critical():
    cfg = PolicyConfig(combine="k_of_n", k=2, n=3)
    assert run(cfg, [{"trend"}, {"trend"}, {"trend"}, {"trend"}]) == []
    assert run(cfg, [{"trend"}, set(), set(), {"page_hinkley"}]) == []  # 3 windows apart: outside n = 3
    assert run(cfg, [{"trend"}, set(), {"page_hinkley"}]) == [(2, "drift", "critical")]


def test_cooldown_blocks_a_new_episode_until_it_has_passed():
    cfg = PolicyConfig(clear_windows=1, cooldown_windows=5)
    fired = [{"trend"}, set(), {"trend"}, set(), {"trend"}, {"trend"}]
    assert run(cfg, fired) == [(0, "drift", "warning"), (1, "drift_resolved", "info"), (5, "drift", "warning")]


def test_signals_outside_the_configured_set_are_ignored():
    assert run(PolicyConfig(), [{"epsilon"}] * 10) == []
    assert run(PolicyConfig(signals=("epsilon",)), [{"epsilon"}] * 3) == [(0, "drift", "warning")]


@pytest.mark.parametrize("bad", [dict(combine="most"), dict(combine="k_of_n", k=4), dict(n=0),
                                 dict(clear_windows=0), dict(cooldown_windows=-1)])
def test_invalid_policies_are_refused_with_the_reason(bad):
    with pytest.raises(ValueError, match="must|needs"):
        PolicyConfig(**bad)


@settings(max_examples=200, deadline=None)
@given(RULE_SETS, st.integers(1, 6), st.integers(0, 8), st.sampled_from(["any", "k_of_n"]), st.integers(0, 80))
def test_episodes_alternate_respect_cooldown_and_survive_a_restart(fired, clear, cooldown, combine, cut):
    cfg = PolicyConfig(combine=combine, k=2, n=5, clear_windows=clear, cooldown_windows=cooldown)
    whole = run(cfg, fired)
    kinds = [r for _, r, _ in whole]
    assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False))  # open, resolve, open, ...
    assert not kinds or kinds[0] == "drift"
    opens = [i for i, r, _ in whole if r == "drift"]
    assert all(b - a >= max(cooldown, 1) for a, b in zip(opens, opens[1:], strict=False))
    # a restart in the middle: state through JSON, then go on
    state = PolicyState()
    cut = min(cut, len(fired))
    first = [(i, r, s) for i, f in enumerate(fired[:cut]) for r, s, _ in step(state, cfg, i, f)]
    state = PolicyState.from_dict(json.loads(json.dumps(state.to_dict())))
    rest = [(i, r, s) for i, f in enumerate(fired) if i >= cut for r, s, _ in step(state, cfg, i, f)]
    assert first + rest == whole


def test_a_jump_raises_one_drift_alert_with_its_evidence_and_a_restart_changes_nothing():
    stats = windows_from([P] * 30 + [(0.3, 0.3, 0.2, 0.1, 0.1)] * 30, seed=5)
    policy = AlertPolicy()
    state = AlertState()
    whole = [a for w in stats for a in evaluate(w, policy, state)]
    drift = [a for a in whole if a.rule == "drift"]
    assert len(drift) == 1 and drift[0].window_start >= T0 + 30 * 60
    assert drift[0].severity in ("warning", "critical") and drift[0].evidence["rules"]
    assert drift[0].id.endswith("/drift")
    state, again = AlertState(), []
    for i, w in enumerate(stats):
        if i in (10, 31, 45):  # restarts: state through its JSON form, River detectors rebuilt by replay
            state = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
        again.extend(evaluate(w, policy, state))
    assert [a.to_bytes() for a in again] == [a.to_bytes() for a in whole]


def test_family_size_tightens_the_z_rules_so_many_keys_do_not_multiply_false_alarms():
    stats = windows_from([P] * 300, seed=6)
    loose = AlertPolicy(z=2.0, trend_z=2.0)
    tight = AlertPolicy(z=2.0, trend_z=2.0, family_size=1000)
    count = {}
    for name, policy in (("loose", loose), ("tight", tight)):
        state = AlertState()
        count[name] = sum(a.rule in ("delta_z", "trend") for w in stats for a in evaluate(w, policy, state))
    assert tight.adjusted_z(2.0) > 4.0
    assert count["loose"] > 10 and count["tight"] < count["loose"] / 5

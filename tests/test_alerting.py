import random

import pytest
from valuedrift.streams.core.alerting import AlertPolicy, AlertState, evaluate, trend_slope, two_sided_p

from tests.helpers import T0, P, run_rules, windows_from


def test_epsilon_rule_fires_on_almost_every_window_without_change():
    stats = windows_from([P] * 200, seed=1)
    alerts = run_rules(stats)
    eps = sum(a.rule == "epsilon" for a in alerts)
    assert eps >= 0.95 * (len(stats) - 1)


def test_calibrated_rules_stay_quiet_without_change():
    stats = windows_from([P] * 400, seed=2)
    alerts = run_rules(stats)
    pages = [a for a in alerts if a.severity in ("warning", "critical")]
    assert all(a.rule == "drift" for a in pages)
    assert len(pages) <= 2  # measured 0.55 drift episodes per 1000 windows for the default policy (bench detectors)


def test_a_large_jump_fires_delta_z_with_evidence():
    stats = windows_from([(0.96, 0.01, 0.01, 0.01, 0.01)] * 5 + [(0.3, 0.3, 0.2, 0.1, 0.1)] * 3, seed=3)
    alerts = [a for a in run_rules(stats) if a.rule == "delta_z"]
    assert alerts and alerts[0].window_start == T0 + 5 * 60
    a = alerts[0]
    assert a.severity == "info" and a.p_value < 0.001 and a.statistic > a.threshold
    assert a.evidence["windows"] == [T0 + 4 * 60, T0 + 5 * 60]
    assert a.id == "k@2026-01-01T00:05:00Z/delta_z"


def test_slow_drift_fires_trend_but_not_delta_z():
    base, end = (0.9, 0.025, 0.025, 0.025, 0.025), (0.4, 0.15, 0.15, 0.15, 0.15)
    steps = [tuple(b + (e - b) * i / 19 for b, e in zip(base, end, strict=False)) for i in range(20)]
    alerts = run_rules(windows_from(steps, seed=4))
    rules = {a.rule for a in alerts}
    assert "trend" in rules
    trend = next(a for a in alerts if a.rule == "trend")
    assert trend.evidence["slope"] > 0 and len(trend.evidence["trend_windows"]) == AlertPolicy().trend_windows


def test_redelivered_window_raises_nothing_twice():
    stats = windows_from([P] * 3, seed=5)
    st = AlertState()
    first = [evaluate(w, AlertPolicy(), st) for w in stats]
    again = [evaluate(w, AlertPolicy(), st) for w in stats]
    assert any(first) and not any(again)


def test_trend_slope_se_matches_the_closed_form_for_equal_errors():
    for t in (3, 8, 20):
        _, se = trend_slope([0.0] * t, [0.1] * t)
        assert se == pytest.approx(0.1 * (12 / (t * (t * t - 1))) ** 0.5)


def test_two_sided_p():
    assert two_sided_p(3.29) == pytest.approx(0.001, rel=0.01)
    assert two_sided_p(0) == 1.0


def test_policy_validation_names_the_problem():
    with pytest.raises(ValueError, match="unknown alert rule"):
        AlertPolicy(rules=("nope",))
    with pytest.raises(ValueError, match="epsilon"):
        AlertPolicy(epsilon=-1)


RIVER = AlertPolicy(rules=("page_hinkley", "adwin", "kswin"))


def test_river_detectors_catch_a_jump_and_stay_quiet_before_it():
    before = [P] * 40
    after = [(0.3, 0.3, 0.2, 0.1, 0.1)] * 30
    alerts = run_rules(windows_from(before + after, seed=7), RIVER)
    assert all(a.window_start >= T0 + 40 * 60 for a in alerts if a.rule == "page_hinkley")
    ph = [a for a in alerts if a.rule == "page_hinkley"]
    assert ph and ph[0].window_start <= T0 + 50 * 60, "Page-Hinkley took more than 10 windows"
    assert ph[0].threshold == 2.0 and ph[0].evidence["detector"] == "page_hinkley"


def test_detector_state_survives_a_restart_through_json():
    import json

    stats = windows_from([P] * 30 + [(0.3, 0.3, 0.2, 0.1, 0.1)] * 20, seed=8)
    uninterrupted = run_rules(stats, RIVER)
    st = AlertState()
    restarted = [a for w in stats[:33] for a in evaluate(w, RIVER, st)]
    st = AlertState.from_dict(json.loads(json.dumps(st.to_dict())))  # what the changelog table holds
    restarted += [a for w in stats[33:] for a in evaluate(w, RIVER, st)]
    assert [a.id for a in restarted] == [a.id for a in uninterrupted]


def test_unknown_rule_in_settings_is_rejected():
    from valuedrift.streams.settings import Settings

    with pytest.raises(ValueError, match="unknown alert rule"):
        Settings(alert_rules="epsilon,magic").alert_policy()


def test_binary_ddm_rule_sees_a_rising_g2_rate_and_survives_a_restart():
    import json

    stable = (0.85, 0.02, 0.10, 0.02, 0.01)
    risen = (0.75, 0.12, 0.10, 0.02, 0.01)
    stats = windows_from([stable] * 30 + [risen] * 15, seed=8)
    policy = AlertPolicy(rules=("ddm_g2",), signals=("ddm_g2",))
    whole = run_rules(stats, policy)
    fired = [a for a in whole if a.rule == "ddm_g2"]
    assert fired and all(a.window_start >= T0 + 30 * 60 for a in fired)
    assert fired[0].severity == "info" and "g2 rate" in fired[0].message
    assert any(a.rule == "drift" for a in whole)
    quiet = run_rules(windows_from([stable] * 45, seed=8), policy)
    assert not [a for a in quiet if a.rule == "ddm_g2"]
    state, again = AlertState(), []
    for i, w in enumerate(stats):
        if i in (12, 33):
            state = AlertState.from_dict(json.loads(json.dumps(state.to_dict())))
        again.extend(evaluate(w, policy, state))
    assert [a.to_bytes() for a in again] == [a.to_bytes() for a in whole]


def test_a_classifier_change_restarts_the_series_instead_of_raising_drift():
    """The same step in S pages when the monitored model changes, and does not when the classifier does."""
    before, after = (0.9, 0.025, 0.025, 0.025, 0.025), (0.4, 0.15, 0.15, 0.15, 0.15)
    stats = windows_from([before] * 30 + [after] * 30, seed=6)
    plain = run_rules(stats)
    assert any(a.rule == "drift" for a in plain) and any(a.rule == "delta_z" for a in plain)
    relabelled = [w.model_copy(update={"classifier_versions": ["v2" if i >= 30 else "v1"],
                                       "classifier_changed": i == 30}) for i, w in enumerate(stats)]
    alerts = run_rules(relabelled)
    change = [a for a in alerts if a.rule == "classifier_changed"]
    assert [a.window_start for a in change] == [T0 + 30 * 60] and change[0].severity == "info"
    assert change[0].evidence["previous_versions"] == ["v1"] and change[0].evidence["classifier_versions"] == ["v2"]
    assert not [a for a in alerts if a.rule not in ("epsilon", "classifier_changed")]
    assert not [a for a in alerts if a.window_start == T0 + 30 * 60 and a.rule == "epsilon"]  # no ΔS across it
    st = AlertState()
    for w in relabelled[:31]:
        evaluate(w, AlertPolicy(), st)
    assert len(AlertState.from_dict(st.to_dict()).blocks) == 1 and st.classifier == ["v2"]


def test_replaying_classified_records_across_a_classifier_upgrade_flags_the_first_window_after_it():
    from valuedrift.streams.core.records import ClassifiedResponse
    from valuedrift.streams.offline import run_classified
    from valuedrift.streams.settings import Settings

    rng = random.Random(7)
    codes = ("g1", "g2", "g3", "g4", "g5")
    records = []
    for w in range(12):
        mix = (0.9, 0.025, 0.025, 0.025, 0.025) if w < 6 else (0.4, 0.15, 0.15, 0.15, 0.15)
        for i in range(100):
            c = rng.choices(codes, weights=mix)[0]
            records.append(ClassifiedResponse(id=f"r{w}-{i}", monitor_key="k", event_time=T0 + 60 * w + i * 0.6,
                                              category=c, probs={k: float(k == c) for k in codes},
                                              model_version="v1" if w < 6 else "v2"))
    result = run_classified(records, Settings(window_seconds=60.0), codes)
    assert [w.classifier_changed for w in result.windows] == [i == 6 for i in range(12)]
    assert [w.classifier_versions for w in result.windows] == [["v1"]] * 6 + [["v2"]] * 6
    assert [a.rule for a in result.alerts if a.rule != "epsilon"] == ["classifier_changed"]

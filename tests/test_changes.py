"""Alerts say what changed: which categories moved, by how much, which way, with example ids to read."""

from __future__ import annotations

import numpy as np
import pytest
from valuedrift.streams.core.changes import category_changes, difference_interval
from valuedrift.streams.core.records import ClassifiedResponse
from valuedrift.streams.core.simulation import BASE
from valuedrift.streams.offline import run_classified
from valuedrift.streams.settings import Settings

CODES = ("g1", "g2", "g3", "g4", "g5")
T0 = 1767225600.0


def records(toward: int, seed: int, windows: int = 60, k: int = 100, onset: int = 30) -> list[ClassifiedResponse]:
    """k classified responses per 60 s window; from ``onset`` on, 40 % of the mass moves to category ``toward``."""
    rng = np.random.default_rng(seed)
    base = np.asarray(BASE)
    out = []
    for w in range(windows):
        p = base if w < onset else 0.6 * base + 0.4 * np.eye(5)[toward]
        for i, c in enumerate(rng.choice(5, size=k, p=p)):
            code = CODES[int(c)]
            out.append(ClassifiedResponse(id=f"r{w}-{i}", monitor_key="model-a", event_time=T0 + 60 * w + i * 0.5,
                                          category=code, probs={x: float(x == code) for x in CODES},
                                          model_version="m"))
    return out


@pytest.mark.parametrize("toward, direction", [(1, "toward harmful compliance"), (3, "toward over-refusal")])
def test_a_drift_alert_names_the_category_that_grew_with_examples_from_the_input(toward, direction):
    recs = records(toward, seed=toward)
    result = run_classified(recs, Settings(window_seconds=60, lateness_seconds=0), CODES)
    drift = [a for a in result.alerts if a.rule == "drift"]
    assert drift, [a.rule for a in result.alerts]
    ev = drift[0].evidence
    code = CODES[toward]
    assert ev["top_change"] == code and ev["direction"] == direction
    moved = ev["categories"][code]
    assert moved["share"] > moved["baseline_share"] + 0.2 and moved["ci_low"] > 0 and moved["delta"] > 0
    assert ev["categories"]["g1"]["ci_high"] < 0  # the mass came out of g1
    ids = ev["examples"][code]
    by_id = {r.id: r for r in recs}
    assert 1 <= len(ids) <= 5 and all(by_id[i].category == code for i in ids)
    assert all(by_id[i].event_time >= drift[0].window_start for i in ids)  # from the alerting window
    assert ev["baseline"]["blocks"] >= 1 and ev["baseline"]["n"] >= 100
    assert drift[0].message.startswith(f"model-a: {code} ") and "examples" in drift[0].message


def test_contributions_add_up_to_the_plug_in_delta():
    ch = category_changes(CODES, [85, 2, 10, 2, 1], [50, 30, 10, 8, 2])
    assert sum(c["contribution_nats"] for c in ch["categories"].values()) == pytest.approx(ch["delta_entropy"],
                                                                                           abs=1e-5)
    assert ch["top_change"] == "g2"


def test_no_significant_move_means_no_top_change():
    ch = category_changes(CODES, [85, 2, 10, 2, 1], [84, 3, 10, 2, 1])
    assert ch["top_change"] is None and all(c["ci_low"] <= 0 <= c["ci_high"] for c in ch["categories"].values())


def test_the_difference_interval_covers_at_small_n():
    """Newcombe's interval keeps about its 95 % coverage at n = 20 with a rare category (Wald's does not)."""
    rng = np.random.default_rng(3)
    p0, p1, n = 0.05, 0.15, 20
    covered = 0
    for _ in range(2000):
        a, b = rng.binomial(n, p1), rng.binomial(n, p0)
        lo, hi = difference_interval(a, n, b, n)
        covered += lo <= p1 - p0 <= hi
    assert 0.93 <= covered / 2000 <= 0.995


def swap_records(seed: int = 9) -> list[ClassifiedResponse]:
    """A g1 ↔ g2 swap at window 30: the same multiset of shares, so S does not move at all."""
    rng = np.random.default_rng(seed)
    before = np.asarray(BASE)
    after = before[[1, 0, 2, 3, 4]]
    out = []
    for w in range(60):
        p = before if w < 30 else after
        for i, c in enumerate(rng.choice(5, size=100, p=p)):
            code = CODES[int(c)]
            out.append(ClassifiedResponse(id=f"s{w}-{i}", monitor_key="m", event_time=T0 + 60 * w + i * 0.5,
                                          category=code, probs={x: float(x == code) for x in CODES},
                                          model_version="m"))
    return out


def test_page_on_g2_pages_a_swap_that_leaves_the_entropy_where_it_was():
    settings = Settings(window_seconds=60, lateness_seconds=0)
    plain = run_classified(swap_records(), settings, CODES)
    assert not [a for a in plain.alerts if a.rule in ("drift", "delta_z") and a.window_start < T0 + 31 * 60]
    paged = run_classified(swap_records(), settings.replace(alert_page_on="g2"), CODES)
    drift = [a for a in paged.alerts if a.rule == "drift"]
    assert drift and drift[0].window_start == T0 + 30 * 60 and drift[0].severity == "critical"
    assert "share_g2" in drift[0].evidence["rules"] and drift[0].evidence["top_change"] == "g2"


def test_page_on_stays_quiet_on_stationary_traffic_and_rejects_unknown_codes():
    rng = np.random.default_rng(4)
    recs = []
    for w in range(1000):
        for i, c in enumerate(rng.choice(5, size=100, p=np.asarray(BASE))):
            code = CODES[int(c)]
            recs.append(ClassifiedResponse(id=f"q{w}-{i}", monitor_key="m", event_time=T0 + 60 * w + i * 0.5,
                                           category=code, probs={x: float(x == code) for x in CODES},
                                           model_version="m"))
    settings = Settings(window_seconds=60, lateness_seconds=0, alert_page_on="g2,g4,g5")
    alerts = run_classified(recs, settings, CODES).alerts
    assert sum(a.rule.startswith("share_") for a in alerts) <= 1
    with pytest.raises(ValueError, match="--page-on g7: not a category"):
        run_classified(recs[:10], settings.replace(alert_page_on="g7"), CODES)


def test_the_report_shows_what_moved_and_escapes_it():
    from valuedrift.ops.report import moved

    recs = records(1, seed=1)
    drift = next(a for a in run_classified(recs, Settings(window_seconds=60, lateness_seconds=0), CODES).alerts
                 if a.rule == "drift")
    cell = moved(drift.model_dump(mode="json")["evidence"])
    assert cell.startswith("<b>g2</b>") and "toward harmful compliance" in cell and "e.g. r" in cell
    assert moved({}) == "—"
    assert "&lt;x&gt;" in moved({"top_change": "<x>", "categories": {"<x>": {
        "baseline_share": 0.1, "share": 0.5, "delta": 0.4, "ci_low": 0.3, "ci_high": 0.5}}})

"""The per-record core that the worker and the offline runs share (valuedrift.streams.core.pipeline)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from valuedrift.streams.core.alerting import AlertState
from valuedrift.streams.core.pipeline import Pipeline, RecordRefused
from valuedrift.streams.core.records import ClassifiedResponse
from valuedrift.streams.core.windowing import KeyWindows
from valuedrift.streams.offline import run_classified
from valuedrift.streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CODES = ("g1", "g2", "g3", "g4", "g5")
T0 = 1767225600.0


def rec(i: int, t: float, code: str, key: str = "k", **probs: float) -> ClassifiedResponse:
    return ClassifiedResponse(id=f"r{i}", monitor_key=key, event_time=t, category=code,
                              probs=probs or {code: 1.0}, model_version="m-1")


def core(**settings) -> Pipeline:
    return Settings(window_seconds=60, lateness_seconds=0, alert_min_n=1, **settings).pipeline(CODES)


def test_a_category_outside_the_taxonomy_is_refused_with_where_it_was():
    with pytest.raises(RecordRefused) as err:
        core().add(KeyWindows(), rec(1, T0, "zz"))
    assert err.value.reason(" (line 2 of 3)") == (
        "category 'zz' (line 2 of 3) is not in taxonomy ['g1', 'g2', 'g3', 'g4', 'g5']")
    with pytest.raises(RecordRefused):
        run_classified([rec(1, T0, "g1"), rec(2, T0 + 1, "zz")], Settings(window_seconds=60), CODES)


def test_probabilities_are_mapped_by_code_whatever_their_order():
    c, kw = core(), KeyWindows()
    c.add(kw, rec(1, T0, "g2", g5=0.1, g2=0.9))
    (w,) = c.add(kw, rec(2, T0 + 60, "g1")).closed
    assert w.counts == {"g1": 0, "g2": 1, "g3": 0, "g4": 0, "g5": 0}
    assert w.mean_probs["g2"] == pytest.approx(0.9) and w.mean_probs["g5"] == pytest.approx(0.1)
    assert w.mean_probs["g1"] == 0.0


def test_a_redelivered_source_position_is_a_duplicate_and_not_counted():
    c, kw = core(), KeyWindows()
    assert not c.add(kw, rec(1, T0, "g1"), source=(0, 7)).duplicate
    assert c.add(kw, rec(1, T0, "g1"), source=(0, 7)).duplicate
    (w,) = c.add(kw, rec(2, T0 + 60, "g1"), source=(0, 8)).closed
    assert w.n == 1


def test_judge_is_the_policy_rules_on_the_key_state():
    c, state = core(), AlertState()
    windows = []
    kw = KeyWindows()
    for i in range(400):  # four windows of 100: g1 only, then half g2
        code = "g1" if i < 200 or i % 2 else "g2"
        windows += c.add(kw, rec(i, T0 + (i // 100) * 60 + (i % 100) * 0.5, code)).closed
    windows += kw.close_all(c.cfg, "k", "flush")
    rules = [a.rule for w in windows for a in c.judge(w, state)]
    assert "delta_z" in rules and "drift" in rules
    assert state.windows == 4


def test_page_on_must_name_a_category():
    with pytest.raises(ValueError, match="--page-on g9"):
        core(alert_page_on="g9")


def calls(path: Path) -> set[str]:
    """What a module calls, as ``name`` or ``owner.method`` (``self.pipeline.add`` gives ``pipeline.add``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute):
                owner = f.value.attr if isinstance(f.value, ast.Attribute) else getattr(f.value, "id", "")
                out.add(f"{owner}.{f.attr}")
            else:
                out.add(getattr(f, "id", ""))
    return out


@pytest.mark.parametrize("module", ["streams/worker/app.py", "streams/offline.py"])
def test_worker_and_offline_go_through_the_core_not_around_it(module):
    """Both sides add records and judge windows through the core; neither calls the rules or a window's add."""
    used = calls(ROOT / module)
    assert {"pipeline.add", "pipeline.judge"} <= used
    assert not {"evaluate", "check_page_on", "kw.add", "windows.add"} & used

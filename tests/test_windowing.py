import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from valuedrift.streams.core.entropy import plugin_entropy
from valuedrift.streams.core.taxonomy import CATEGORY_CODES
from valuedrift.streams.core.windowing import KeyWindows, WindowConfig, WindowEngine

T0 = 1767225600.0  # 2026-01-01T00:00:00Z, a multiple of 60


def test_window_closes_when_watermark_passes_end_plus_lateness():
    eng = WindowEngine(WindowConfig(size=60, lateness=10))
    for t, c in [(1, "g1"), (20, "g1"), (59, "g3"), (65, "g1")]:
        assert eng.add("k", T0 + t, c).closed == []
    assert eng.add("k", T0 + 69.9, "g1").closed == []
    closed = eng.add("k", T0 + 70, "g2").closed
    assert len(closed) == 1
    w = closed[0]
    assert (w.window_start, w.window_end, w.n) == (T0, T0 + 60, 3)
    assert w.counts == {"g1": 2, "g2": 0, "g3": 1, "g4": 0, "g5": 0}
    assert w.entropy == pytest.approx(plugin_entropy([2, 1]))
    assert w.delta_entropy is None and w.closed_by == "watermark"


def test_events_within_lateness_count_and_later_ones_are_late():
    eng = WindowEngine(WindowConfig(size=60, lateness=10))
    eng.add("k", T0 + 5, "g1")
    eng.add("k", T0 + 65, "g1")
    assert not eng.add("k", T0 + 30, "g2").late  # watermark 55: window [0, 60) still open
    closed = eng.add("k", T0 + 71, "g1").closed
    assert closed[0].n == 2 and closed[0].counts["g2"] == 1
    res = eng.add("k", T0 + 59, "g4")
    assert res.late and res.window_start == T0 and res.closed_until == T0 + 60
    assert eng.keys["k"].late == 1


def test_delta_entropy_chains_consecutive_windows_and_skips_empty_ones():
    eng = WindowEngine(WindowConfig(size=60, lateness=0))
    eng.add("k", T0 + 1, "g1")
    eng.add("k", T0 + 2, "g3")
    eng.add("k", T0 + 181, "g1")  # closes [0,60); [60,180) stay empty
    out = eng.flush()
    assert [w.window_start for w in out] == [T0 + 180]
    assert out[0].prev_window_start == T0
    assert out[0].delta_entropy == pytest.approx(0.0 - plugin_entropy([1, 1]))
    assert out[0].delta_se is not None


def test_keys_are_independent():
    eng = WindowEngine(WindowConfig(size=60, lateness=0))
    eng.add("a", T0 + 1, "g1")
    assert eng.add("b", T0 + 500, "g1").closed == []  # b's watermark does not close a's window
    assert [w.monitor_key for w in eng.flush()] == ["a", "b"]


def test_redelivered_source_offsets_are_skipped():
    cfg = WindowConfig(size=60, lateness=0)
    kw = KeyWindows()
    assert not kw.add(cfg, "k", T0 + 1, "g1", source=(0, 5)).duplicate
    assert kw.add(cfg, "k", T0 + 2, "g1", source=(0, 5)).duplicate
    assert kw.add(cfg, "k", T0 + 2, "g1", source=(0, 4)).duplicate
    assert not kw.add(cfg, "k", T0 + 3, "g1", source=(1, 0)).duplicate
    assert kw.close_all(cfg, "k", "flush")[0].n == 2


def test_state_round_trips_through_json_dict():
    import json

    cfg = WindowConfig(size=60, lateness=5)
    kw = KeyWindows()
    for i in range(50):
        kw.add(cfg, "k", T0 + i * 7, CATEGORY_CODES[i % 5], source=(0, i))
    restored = KeyWindows.from_dict(json.loads(json.dumps(kw.to_dict())))
    a = kw.add(cfg, "k", T0 + 1000, "g2", source=(0, 99)).closed
    b = restored.add(cfg, "k", T0 + 1000, "g2", source=(0, 99)).closed
    assert a == b and a


def test_probabilities_are_averaged_per_window():
    eng = WindowEngine(WindowConfig(size=60, lateness=0))
    eng.add("k", T0 + 1, "g1", [0.6, 0.1, 0.1, 0.1, 0.1])
    eng.add("k", T0 + 2, "g2", [0.2, 0.6, 0.1, 0.05, 0.05])
    w = eng.flush()[0]
    assert w.mean_probs["g1"] == pytest.approx(0.4) and w.mean_probs["g2"] == pytest.approx(0.35)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="window size"):
        WindowConfig(size=0)
    with pytest.raises(ValueError, match="lateness"):
        WindowConfig(size=60, lateness=-1)


events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(min_value=0, max_value=3600),
              st.sampled_from(CATEGORY_CODES)),
    max_size=300,
)


@given(events, st.sampled_from([0.0, 10.0, 120.0]))
def test_every_event_is_counted_once_or_reported_late(evs, lateness):
    eng = WindowEngine(WindowConfig(size=60, lateness=lateness))
    counted = late = 0
    closed = []
    for key, t, c in evs:
        res = eng.add(key, T0 + t, c)
        late += res.late
        closed.extend(res.closed)
    closed.extend(eng.flush())
    counted = sum(w.n for w in closed)
    assert counted + late == len(evs)
    starts = [(w.monitor_key, w.window_start) for w in closed]
    assert len(starts) == len(set(starts)), "a window was emitted twice"
    for w in closed:
        assert sum(w.counts.values()) == w.n


@given(st.randoms(use_true_random=False))
def test_in_order_input_is_never_late_and_independent_of_key_interleaving(rnd):
    per_key = {k: sorted(rnd.uniform(0, 1200) for _ in range(40)) for k in "xyz"}
    merged = [(k, t) for k, ts in per_key.items() for t in ts]
    merged.sort(key=lambda kt: kt[1])
    shuffled_keys = merged[:]
    # interleave keys differently while keeping each key's own order
    rnd.shuffle(shuffled_keys)
    by_key_order = {k: iter(ts) for k, ts in per_key.items()}
    reordered = [(k, next(by_key_order[k])) for k, _ in shuffled_keys]

    def run(seq):
        eng = WindowEngine(WindowConfig(size=60, lateness=0))
        out = []
        for k, t in seq:
            res = eng.add(k, T0 + t, "g1" if int(t) % 3 else "g4")
            assert not res.late
            out.extend(res.closed)
        return sorted(out + eng.flush(), key=lambda w: (w.monitor_key, w.window_start))

    a, b = run(merged), run(reordered)
    assert [(w.monitor_key, w.window_start, w.counts, w.entropy) for w in a] == [
        (w.monitor_key, w.window_start, w.counts, w.entropy) for w in b]


def test_confusion_corrected_and_soft_entropy_are_reported_per_window():
    from valuedrift.streams.core.estimators import confusion_corrected
    from valuedrift.streams.core.windowing import window_statistic

    codes = ("g1", "g2", "g3", "g4", "g5")
    # a classifier that labels a fifth of true g1 as g3: predicted counts overstate g3
    confusion = ((80, 0, 20, 0, 0), (0, 100, 0, 0, 0), (0, 0, 100, 0, 0), (0, 0, 0, 100, 0), (0, 0, 0, 0, 100))
    counts = [64, 0, 36, 0, 0]  # what 80 g1 and 20 g3 look like through it
    w = window_statistic("k", 0, 60, codes, counts, [60, 2, 34, 2, 2], "watermark", None, confusion)
    truth = [0.8, 0, 0.2, 0, 0]
    assert list(confusion_corrected(counts, confusion).round(6)) == truth
    assert w.entropy_corrected == pytest.approx(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2)))
    assert w.entropy_corrected < w.entropy  # the raw labels look more mixed than the truth
    assert w.entropy_soft == pytest.approx(plugin_entropy([60, 2, 34, 2, 2]))
    assert window_statistic("k", 0, 60, codes, counts, None, "watermark", None).entropy_corrected is None
    with pytest.raises(ValueError, match="5x5"):
        WindowConfig(size=60, confusion=((1.0,),))


def test_windows_record_their_classifier_versions_and_flag_a_change():
    cfg = WindowConfig(size=60, lateness=0)
    kw = KeyWindows()
    plan = [(0, "v1"), (1, "v1"), (2, "v1"), (2, "v2"), (3, "v2"), (4, "v2"), (5, None)]  # window, version
    closed = []
    for w, version in plan:
        closed += kw.add(cfg, "k", w * 60 + 1.0, "g1", version=version).closed
        if w == 3:  # a restarted worker carries the versions of its open windows through the changelog
            kw = KeyWindows.from_dict(kw.to_dict())
    closed += kw.close_all(cfg, "k", "flush")
    got = [(w.classifier_versions, w.classifier_changed) for w in closed]
    assert got == [(["v1"], False), (["v1"], False), (["v1", "v2"], True), (["v2"], True), (["v2"], False),
                   ([], False)]  # events without a version (older producers) neither record nor flag one
    old = kw.to_dict()
    del old["versions"], old["prev_versions"]  # a snapshot written before versions were kept still loads
    assert KeyWindows.from_dict(old).prev_versions is None


def test_a_window_keeps_a_bounded_number_of_classifier_versions():
    from valuedrift.streams.core.windowing import MAX_VERSIONS_PER_WINDOW

    kw = KeyWindows()
    cfg = WindowConfig(size=60, lateness=0)
    for i in range(100):  # a hostile producer: a new version on every record
        kw.add(cfg, "k", 1.0 + i * 0.1, "g1", version=f"v{i:03d}")
    (w,) = kw.close_all(cfg, "k", "flush")
    assert w.n == 100 and w.classifier_versions == [f"v{i:03d}" for i in range(MAX_VERSIONS_PER_WINDOW)]

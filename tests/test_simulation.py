import json
import subprocess
import sys

import numpy as np
import pytest
from valuedrift.ops.bench_detectors import run_bench
from valuedrift.streams.core.entropy import plugin_entropy
from valuedrift.streams.core.simulation import (
    BASE,
    jailbreak_probs,
    jump_probs,
    sample,
    scenario_probs,
    window_statistics,
)


def test_drift_scenario_raises_true_entropy_at_sigma_per_step():
    probs = scenario_probs("drift", 40, sigma=0.0125, onset=10)
    s = [plugin_entropy(list(p)) for p in probs]
    assert s[10] == pytest.approx(s[0])
    assert np.diff(s[10:]) == pytest.approx(np.full(29, 0.0125), abs=1e-9)


def test_jump_and_jailbreak_scenarios():
    p = jump_probs(BASE, 0.1, 10, at=5)
    assert plugin_entropy(list(p[5])) - plugin_entropy(list(p[4])) == pytest.approx(0.1, abs=1e-9)
    j = jailbreak_probs(BASE, 40, midpoint=20)
    assert j[-1][1] > 0.4 > j[0][1] and all(abs(q.sum() - 1) < 1e-12 for q in j)


def test_sampling_is_seeded_and_windows_chain():
    a = sample("k", scenario_probs("stable", 5), 100, np.random.default_rng(1))
    b = sample("k", scenario_probs("stable", 5), 100, np.random.default_rng(1))
    assert (a.counts == b.counts).all() and a.counts.sum(axis=1).tolist() == [100] * 5
    stats = window_statistics(a)
    assert stats[0].delta_entropy is None and stats[1].prev_window_start == stats[0].window_start


def test_detector_bench_reports_every_rule_and_recovers_sigma():
    r = run_bench(runs=12, seed=3)
    assert r["default_policy"] in r["detectors"]
    for d in r["detectors"].values():
        assert {"false_alarms_per_1000", "median_delay_drift", "p90_delay_drift", "median_delay_jump"} <= set(d)
    assert r["detectors"]["epsilon"]["false_alarms_per_1000"] > 900  # the bare ε rule fires on noise
    assert r["detectors"]["default"]["false_alarms_per_1000"] < 20
    assert r["sigma"]["mean_estimate"] == pytest.approx(0.0125, rel=0.2)


def test_simulate_cli_is_deterministic(tmp_path):
    def run(path):
        r = subprocess.run([sys.executable, "-m", "valuedrift.ops.cli", "simulate", "--scenario", "jump",
                            "--steps", "3",
                            "--k", "4", "--seed", "5", "--out", str(path)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return path.read_text()

    a, b = run(tmp_path / "a.jsonl"), run(tmp_path / "b.jsonl")
    assert a == b and len(a.splitlines()) == 12
    assert json.loads(a.splitlines()[0])["monitor_key"] == "sim-jump"


@pytest.mark.parametrize("args, fragment", [
    (["--window", "0"], "--window must be from 1 s to a year"),
    (["--window", "0.5s"], "--window must be from 1 s to a year"),
    (["--window", "99999999999999999999d"], "--window must be from 1 s to a year"),
    (["--sigma", "nan"], "--sigma must be a drift rate from 0 to 1"),
    (["--sigma", "-0.01"], "--sigma must be a drift rate from 0 to 1"),
    (["--jump", "inf"], "--jump must be a finite entropy step"),
])
def test_simulate_rejects_silly_values_in_one_line(tmp_path, args, fragment):
    r = subprocess.run([sys.executable, "-m", "valuedrift.ops.cli", "simulate", "--steps", "2", "--k", "3",
                        "--out", str(tmp_path / "s.jsonl"), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and fragment in r.stderr, r.stderr
    assert not (tmp_path / "s.jsonl").exists()

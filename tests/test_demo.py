"""`valuedrift demo` end to end: embedded broker, worker process, live table, summary, exit 0."""

import subprocess
import sys

import pytest
from valuedrift.ops.scenario import STABLE, demo_events, drifting_probs
from valuedrift.streams.core.entropy import plugin_entropy


def test_scenario_is_seeded_and_drifts():
    a = list(demo_events(windows=4, per_window=20, seed=3))
    b = list(demo_events(windows=4, per_window=20, seed=3))
    assert a == b and len(a) == 160
    assert plugin_entropy([p * 1000 for p in drifting_probs(11, 12)]) > plugin_entropy([p * 1000 for p in STABLE])


@pytest.mark.slow
@pytest.mark.integration
def test_demo_runs_end_to_end_and_detects_the_drifting_model():
    r = subprocess.run([sys.executable, "-m", "valuedrift.ops.cli", "demo", "--timeout", "170"], capture_output=True,
                       text=True, timeout=200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "model-drifting" in r.stdout and "summary" in r.stdout

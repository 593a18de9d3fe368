"""``valuedrift bench memory`` measures each run alone and reports the ratio to its baseline."""

import json

from tests.helpers import cli


def test_bench_memory_reports_both_runs_and_their_ratio():
    r = cli("bench", "memory", "--model", "rules", "--pairs", "50", "--long-kb", "50", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["pairs"] == 50 and out["long_prompt_kb"] == 50
    assert out["baseline_max_rss_mb"] > 10 and out["long_max_rss_mb"] > 10
    assert out["ratio"] == round(out["long_max_rss_mb"] / out["baseline_max_rss_mb"], 3)

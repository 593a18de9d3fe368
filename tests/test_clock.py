"""A bounded clock: one event stamped years ahead is rejected, live and in replay, and blinds no key."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from valuedrift.ops.kafka import ensure_topics, read_topic
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.core.records import DeadLetter, ResponseEvent

from tests.helpers import produce, windows_of
from tests.texts import PAIRS

T0 = 1767225600.0  # 2026-01-01
Y2099 = 4070908800.0


def events_with_a_stray_clock(n: int = 120) -> list[ResponseEvent]:
    """n events of key "a", 3 s apart, with one in the middle stamped 2099 (inside the accepted range)."""
    prompt, response = PAIRS["g1"]
    out = [ResponseEvent(id=f"a-{i}", monitor_key="a", event_time=T0 + 3 * i, prompt=prompt, response=response)
           for i in range(n)]
    out.insert(n // 2, ResponseEvent(id="stray", monitor_key="a", event_time=Y2099, prompt=prompt,
                                     response=response))
    return out


def test_replay_in_input_order_rejects_the_stray_event_and_windows_the_rest(tmp_path: Path):
    src = tmp_path / "e.jsonl"
    src.write_text("".join(e.model_dump_json() + "\n" for e in events_with_a_stray_clock()))
    r = subprocess.run([sys.executable, "-m", "valuedrift.ops.cli", "replay", "-i", str(src), "--order", "input",
                        "--classifier", "rules", "--window", "60s", "--lateness", "0s", "--json",
                        str(tmp_path / "out.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert sum(w["n"] for w in out["windows"]) == 120  # none late, none lost
    assert out["input"]["n_bad_lines"] == 1 and out["input"]["n_late"] == 0
    assert any("stray: event_time 2099-01-01T00:00:00Z" in b and "max_clock_skew_seconds=300" in b
               for b in out["input"]["bad_examples"]), out["input"]["bad_examples"]


@pytest.mark.integration
def test_the_live_worker_dead_letters_the_stray_event_and_windows_the_rest(settings, tmp_path: Path):
    asyncio.run(ensure_topics(settings))
    with WorkerProcess(settings, tmp_path / "worker.log") as worker:
        produce(settings, events_with_a_stray_clock())
        ws = windows_of(settings, expect=6)
        dls = [DeadLetter.parse_bytes(m) for m in asyncio.run(
            read_topic(settings.broker, settings.topics.deadletter, expect=1, timeout=30))]
        assert worker.running, worker.log_tail()
    assert sum(w.n for w in ws) == 120 and len({w.id for w in ws}) == len(ws) == 6
    (dl,) = dls
    assert dl.stage == "classify" and "stray: event_time 2099-01-01T00:00:00Z" in dl.reason
    assert "ahead of the time it was observed" in dl.reason

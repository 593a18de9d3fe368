"""A stage that raises stops the whole worker with one line and a non-zero exit, instead of leaving it half alive."""

from __future__ import annotations

import subprocess
import sys

from valuedrift.streams.worker.app import EXIT_STAGE_FAILED


def test_a_failing_stage_stops_the_process_with_one_line():
    code = ("import asyncio\n"
            "from valuedrift.streams.worker.app import stops_worker_on_failure\n"
            "@stops_worker_on_failure('windows')\n"
            "async def stage(stream):\n"
            "    raise ValueError('window size 0.0001 s')\n"
            "asyncio.run(stage(None))\n"
            "print('still running')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_STAGE_FAILED and "still running" not in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("valuedrift worker:")]
    assert lines == ["valuedrift worker: the windows stage failed (ValueError: window size 0.0001 s); stopping, "
                     "a restarted worker redoes its unfinished input"], r.stderr


def test_a_cancelled_stage_is_not_a_failure():
    code = ("import asyncio\n"
            "from valuedrift.streams.worker.app import stops_worker_on_failure\n"
            "@stops_worker_on_failure('alerts')\n"
            "async def stage():\n"
            "    raise asyncio.CancelledError\n"
            "try:\n"
            "    asyncio.run(stage())\n"
            "except asyncio.CancelledError:\n"
            "    print('cancelled')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "cancelled", r.stderr

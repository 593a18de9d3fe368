"""``valuedrift bench memory``: the most memory a command takes on long texts, against the same command on short ones.

Each run is a fresh ``valuedrift classifier evaluate`` process on ``pairs`` labelled pairs: the baseline with short
prompts, the case with one prompt of ``long_kb`` KB among them (texts are clipped to the model's window before
tokenising, and no array is built whose width is the longest text, so the two should be close). Max RSS comes
from the operating system (``getrusage`` of the finished child), so the numbers are the processes' own.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CODES = ("g1", "g2", "g3", "g4", "g5")


def write_pairs(path: Path, pairs: int, long_chars: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(pairs):
            prompt = "x" * long_chars if i == 0 and long_chars else f"question {i} " * 10
            fh.write(json.dumps({"id": f"p{i}", "prompt": prompt, "response": f"answer {i} " * 20,
                                 "label": rng.choice(CODES)}) + "\n")
    return path


# A fresh parent per measurement: getrusage(RUSAGE_CHILDREN) reports the largest child a process has had.
_MEASURE = ("import resource, subprocess, sys\n"
            "r = subprocess.run([sys.executable, '-m', 'valuedrift.ops.cli', *sys.argv[1:]], capture_output=True)\n"
            "sys.stderr.buffer.write(r.stderr[-300:])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(r.returncode)\n")


def _max_rss_mb(args: list[str]) -> float:
    """Max RSS in MB of one ``valuedrift`` command, measured alone."""
    r = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {r.stderr.strip()}")
    return int(r.stdout.split()[-1]) / 1024  # Linux reports kilobytes


def run_bench(pairs: int = 1000, long_kb: int = 200, model: str = "default") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        short = write_pairs(Path(tmp) / "short.jsonl", pairs, 0)
        long = write_pairs(Path(tmp) / "long.jsonl", pairs, long_kb * 1000)
        base = _max_rss_mb(["classifier", "evaluate", "--data", str(short), "--model", model, "--json"])
        case = _max_rss_mb(["classifier", "evaluate", "--data", str(long), "--model", model, "--json"])
    base, case = round(base, 1), round(case, 1)  # the ratio is of the numbers printed
    return {"command": "classifier evaluate", "model": model, "pairs": pairs, "long_prompt_kb": long_kb,
            "baseline_max_rss_mb": base, "long_max_rss_mb": case, "ratio": round(case / base, 3)}

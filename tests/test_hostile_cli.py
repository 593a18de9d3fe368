"""Hostile and careless command lines: every one ends in a one-line error naming the problem, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import cli


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    events = tmp_path / "e.jsonl"
    r = cli("simulate", "--steps", "2", "--k", "3", "--out", events)
    assert r.returncode == 0, r.stderr
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "a", "prompt": "p", "response": "r", "label": "g1"}) + "\n")
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "\n")
    return {"events": str(events), "pairs": str(pairs), "deep": str(tmp_path / "deep.jsonl"), "dir": str(tmp_path),
            "missing": str(tmp_path / "no" / "such" / "out.jsonl")}


PROBES = [
    (["simulate", "--steps", "2", "--k", "3", "--out", "{dir}"], "is a folder: give a file path"),
    (["simulate", "--steps", "2", "--k", "3", "--out", "{missing}"], "no such file or folder"),
    (["simulate", "--steps", "2", "--k", "3", "--out", "/dev/full"], "No space left on device"),
    (["simulate", "--steps", "2", "--k", "3", "--corpus", "{dir}", "--out", "{dir}/s.jsonl"], "is a folder"),
    (["classifier", "evaluate", "--data", "{dir}", "--model", "rules"], "is a folder"),
    (["classifier", "evaluate", "--data", "{deep}", "--model", "rules"], "JSON nested too deeply"),
    (["classifier", "evaluate", "--data", "{pairs}", "--model", "rules", "--predictions", "{dir}"], "is a folder"),
    (["replay", "-i", "{events}", "--classifier", "rules", "--classified", "/dev/full"], "No space left on device"),
    (["replay", "-i", "{events}", "--classifier", "rules", "--png", "{events}"], "where a folder is needed"),
    (["replay", "-i", "{dir}", "--classifier", "rules"], "is a folder; give the files in it"),
    (["probe", "--probes", "{events}", "--out", "{dir}"], "is a folder"),
]


@pytest.mark.parametrize("args, fragment", PROBES, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in enumerate(PROBES)])
def test_a_bad_path_or_file_is_one_line(files, args, fragment):
    r = cli(*[a.format(**files) for a in args])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr


def test_a_metrics_port_in_use_is_one_line_before_start_up():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli("worker", "--metrics-port", port, "--broker", "tansu://127.0.0.1:1", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == (f"error: --metrics-port {port}: cannot listen on 127.0.0.1:{port} (Address already "
                                f"in use); pick a free port or 0 (off)")

"""The command line: --help everywhere, and bad input gives one line naming the problem, never a traceback."""


import pytest

from tests.helpers import cli

COMMANDS = ["broker", "worker", "topics", "schemas", "demo", "simulate", "replay", "probe", "soak", "sampler run",
            "sampler bench", "classifier train", "classifier evaluate", "classifier card", "bench detectors",
            "bench memory", "bench replay", "bench stream", "webhook verify"]


def run(*args, env=None, timeout=60):
    return cli(*args, env=env, timeout=timeout)


@pytest.mark.parametrize("cmd", [[], *(c.split() for c in COMMANDS)])
def test_help(cmd):
    r = run(*cmd, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


@pytest.mark.parametrize("args, fragment", [
    (["worker", "--window", "soon"], "'soon' is not a duration"),
    (["worker", "--broker", "http://x:1"], "scheme must be kafka://"),
    (["worker", "--partitions", "0"], "partitions must be >= 1"),
    (["worker", "--classifier", "gpt-judge", "--broker", "kafka://127.0.0.1:1"], "unknown classifier 'gpt-judge'"),
    (["worker", "--precision", "bf16", "--broker", "kafka://127.0.0.1:1"], "must be auto, int8, fp16 or fp32"),
    (["worker", "--poll-batch-size", "0"], "poll_batch_size (--poll-batch-size, VALUEDRIFT_POLL_BATCH_SIZE) must be"),
    (["worker", "--inference-batch-size", "-1"], "inference_batch_size (--inference-batch-size"),
    (["replay", "-i", "events.jsonl", "--inference-batch-size", "-1"], "inference_batch_size (--inference-batch-size"),
    (["replay", "-i", "events.jsonl", "--window", "soon"], "--window: 'soon' is not a duration"),
    (["topics", "--broker", "kafka://127.0.0.1:1"], "cannot reach the broker at kafka://127.0.0.1:1"),
    (["classifier", "card", "--data", "/nonexistent", "--out", "/nonexistent/card.json", "--model", "/nonexistent"],
     "/nonexistent/val.jsonl: no such file"),
])
def test_bad_arguments_give_one_line(args, fragment):
    r = run(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr


def test_bad_environment_variable_gives_one_line():
    import os

    r = run("worker", env={**os.environ, "VALUEDRIFT_Z_THRESHOLD": "high"})
    assert r.returncode != 0 and r.stderr.strip() == "error: VALUEDRIFT_Z_THRESHOLD='high' is not a valid float"


def test_the_renamed_batch_size_variable_gives_one_line_naming_its_successor():
    import os

    r = run("worker", env={**os.environ, "VALUEDRIFT_BATCH_SIZE": "5"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: VALUEDRIFT_BATCH_SIZE is no longer read: set VALUEDRIFT_POLL_BATCH_SIZE")
    assert len(r.stderr.strip().splitlines()) == 1


def test_schemas_check_passes_on_committed_files():
    r = run("schemas", "--check")
    assert r.returncode == 0, r.stderr

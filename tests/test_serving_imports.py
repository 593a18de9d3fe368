"""The serving path (worker, records, rule classifier, CLI) must not import torch or transformers."""

import subprocess
import sys


def test_worker_path_does_not_import_torch():
    code = ("import sys, streams.app, streams.offline, ops.cli, ops.demo, classifier.loading; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pure_logic_does_not_import_kafka():
    code = ("import sys, streams.entropy, streams.windowing, streams.alerting, streams.offline, streams.records; "
            "bad = [m for m in ('faust', 'aiokafka', 'mode') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

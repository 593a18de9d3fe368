"""The serving path (worker, records, rule classifier, CLI) must not import torch or transformers."""

import subprocess
import sys


def test_worker_path_does_not_import_torch():
    code = ("import sys, valuedrift.streams.app, valuedrift.streams.offline, valuedrift.ops.cli, valuedrift.ops.demo, "
            "valuedrift.classifier.loading; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pure_logic_does_not_import_kafka():
    code = ("import sys, valuedrift.streams.entropy, valuedrift.streams.windowing, valuedrift.streams.alerting, "
            "valuedrift.streams.offline, valuedrift.streams.records; "
            "bad = [m for m in ('faust', 'aiokafka', 'mode') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

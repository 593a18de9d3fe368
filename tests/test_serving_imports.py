"""The serving path (worker, records, rule classifier, CLI) must not import torch or transformers."""

import subprocess
import sys


def test_worker_path_does_not_import_torch():
    code = ("import sys, valuedrift.streams.worker.app, valuedrift.streams.offline, valuedrift.ops.cli, "
            "valuedrift.ops.demo, valuedrift.classifier.loading; "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pure_logic_does_not_import_kafka():
    """Everything in valuedrift.streams.core, and the offline pipeline, runs without Kafka, Faust or torch."""
    code = ("import sys, pkgutil, importlib, valuedrift.streams.core as core, valuedrift.streams.offline; "
            "[importlib.import_module(m.name) for m in pkgutil.iter_modules(core.__path__, core.__name__ + '.')]; "
            "bad = [m for m in ('faust', 'aiokafka', 'mode', 'torch') if m in sys.modules]; print(bad); "
            "sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

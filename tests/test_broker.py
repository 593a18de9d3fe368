import pytest
from valuedrift.ops.broker import EmbeddedBroker, answers_kafka, free_port

pytestmark = pytest.mark.integration


def test_starts_answers_and_stops_without_leaking():
    with EmbeddedBroker() as b:
        assert b.running and answers_kafka(b.host, b.port)
        assert b.url == f"tansu://127.0.0.1:{b.port}"
        proc = b.proc
    assert not b.running and proc.poll() is not None
    assert not answers_kafka("127.0.0.1", b.port)


def test_a_closed_port_does_not_answer():
    assert not answers_kafka("127.0.0.1", free_port())


def test_the_broker_command_stops_its_tansu_child_on_sigterm():
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "valuedrift.ops.cli", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert f"tansu://127.0.0.1:{port}" in proc.stdout.readline()
        assert answers_kafka("127.0.0.1", port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) is not None
        deadline = time.monotonic() + 10
        while answers_kafka("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not answers_kafka("127.0.0.1", port)
    finally:
        proc.kill()

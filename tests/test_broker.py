import pytest

from ops.broker import EmbeddedBroker, answers_kafka, free_port

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

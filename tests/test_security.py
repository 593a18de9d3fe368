import pytest
from valuedrift.streams.security import KafkaSecurity
from valuedrift.streams.settings import BrokerURL, Settings
from valuedrift.streams.worker.app import faust_settings

SASL = {"VALUEDRIFT_SECURITY_PROTOCOL": "SASL_SSL", "VALUEDRIFT_SASL_MECHANISM": "scram-sha-256",
        "VALUEDRIFT_SASL_USERNAME": "monitor"}


def test_password_comes_from_a_file_and_never_shows_in_repr(tmp_path):
    f = tmp_path / "pw"
    f.write_text("hunter2\n")
    s = KafkaSecurity.from_env({**SASL, "VALUEDRIFT_SASL_PASSWORD_FILE": str(f)})
    assert s.password == "hunter2" and s.mechanism == "SCRAM-SHA-256" and s.tls
    assert "hunter2" not in repr(s)
    opts = s.aiokafka_options()
    assert opts["security_protocol"] == "SASL_SSL" and opts["sasl_plain_password"] == "hunter2"
    assert opts["ssl_context"] is not None


@pytest.mark.parametrize("env, message", [
    ({"VALUEDRIFT_SECURITY_PROTOCOL": "KERBEROS"}, "security protocol must be one of"),
    ({**SASL, "VALUEDRIFT_SASL_PASSWORD": "x", "VALUEDRIFT_SASL_MECHANISM": "GSSAPI"}, "SASL_MECHANISM"),
    (SASL, "VALUEDRIFT_SASL_PASSWORD"),
    ({**SASL, "VALUEDRIFT_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "VALUEDRIFT_SASL_PASSWORD_FILE"),
    ({"VALUEDRIFT_SECURITY_PROTOCOL": "SSL", "VALUEDRIFT_SSL_CAFILE": "/nonexistent/ca.pem"}, "SSL_CAFILE"),
])
def test_incomplete_or_wrong_security_settings_say_what_is_missing(env, message):
    with pytest.raises(ValueError, match=message):
        KafkaSecurity.from_env(env)


def test_broker_urls_carry_the_environment_security_except_the_embedded_broker(monkeypatch):
    for k, v in {**SASL, "VALUEDRIFT_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "VALUEDRIFT_SASL_PASSWORD": "pw"}.items():
        monkeypatch.setenv(k, v)
    real = BrokerURL.parse("kafka://k1:9092,k2:9092")
    assert real.client_options() == {"bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "SASL_PLAINTEXT",
                                     "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "monitor",
                                     "sasl_plain_password": "pw"}
    creds = faust_settings(Settings(broker=real))["broker_credentials"]
    assert creds.username == "monitor" and creds.mechanism.value == "SCRAM-SHA-256"
    assert BrokerURL.parse("tansu://127.0.0.1:9").client_options() == {"bootstrap_servers": "127.0.0.1:9"}
    assert "broker_credentials" not in faust_settings(Settings(broker=BrokerURL.parse("tansu://127.0.0.1:9")))


def test_a_bad_security_environment_is_a_one_line_cli_error():
    import os

    from tests.helpers import cli as run

    env = {**os.environ, "VALUEDRIFT_SECURITY_PROTOCOL": "SASL_SSL"}
    r = run("topics", "--broker", "kafka://127.0.0.1:1", env=env)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "SASL_MECHANISM" in r.stderr


def test_sasl_over_plaintext_warns_and_tls_does_not():
    import os

    from tests.helpers import cli as run

    creds = {"VALUEDRIFT_SASL_MECHANISM": "PLAIN", "VALUEDRIFT_SASL_USERNAME": "u", "VALUEDRIFT_SASL_PASSWORD": "p"}
    plain = run("topics", "--broker", "kafka://127.0.0.1:1",
                env={**os.environ, **creds, "VALUEDRIFT_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    assert plain.stderr.startswith("warning: SASL credentials go to the broker without encryption")
    assert "Traceback" not in plain.stderr and plain.returncode != 0  # nothing listens on port 1
    assert KafkaSecurity("SASL_SSL", "PLAIN", "u", "p").warnings() == []

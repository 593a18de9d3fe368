import dataclasses

import pytest
from valuedrift.streams.core.alerting import AlertPolicy
from valuedrift.streams.core.policy import PolicyConfig
from valuedrift.streams.core.topics import Topics
from valuedrift.streams.settings import ENV_NAMES, BrokerURL, Settings, parse_duration, settings_reference


def test_broker_urls():
    b = BrokerURL.parse("kafka://k1:9092,k2:9093")
    assert b.bootstrap == "k1:9092,k2:9093" and b.faust == "kafka://k1:9092;kafka://k2:9093" and not b.embedded
    assert BrokerURL.parse("tansu://127.0.0.1:1234").embedded
    assert BrokerURL.parse("localhost:9092").scheme == "kafka"
    for bad in ("http://x:1", "kafka://nohost", "kafka://h:99999", "kafka://"):
        with pytest.raises(ValueError, match="broker URL"):
            BrokerURL.parse(bad)


def test_env_then_overrides():
    s = Settings.from_env({"VALUEDRIFT_EPSILON": "0.01", "VALUEDRIFT_TOPIC_PREFIX": "x."}, epsilon=0.5)
    assert s.epsilon == 0.5 and s.topics.alerts == "x.alerts"
    assert Settings.from_env(s.env()) == s


def test_boolean_settings_parse_from_the_environment():
    assert Settings.from_env({"VALUEDRIFT_CORRECT_CONFUSION": "false"}).correct_confusion is False
    assert Settings.from_env({"VALUEDRIFT_CORRECT_CONFUSION": "On"}).correct_confusion is True
    with pytest.raises(ValueError, match="VALUEDRIFT_CORRECT_CONFUSION='maybe' is not a boolean"):
        Settings.from_env({"VALUEDRIFT_CORRECT_CONFUSION": "maybe"})
    off = Settings(correct_confusion=False).window_config(("a", "b"), [[1, 0], [0, 1]])
    assert off.confusion is None


def test_every_setting_has_an_env_name():
    assert "VALUEDRIFT_BROKER" in ENV_NAMES and "VALUEDRIFT_WINDOW_SECONDS" in ENV_NAMES


def test_bad_values_name_the_variable():
    with pytest.raises(ValueError, match="VALUEDRIFT_EPSILON"):
        Settings.from_env({"VALUEDRIFT_EPSILON": "tiny"})
    with pytest.raises(ValueError, match="partitions"):
        Settings(partitions=0)


def test_durations():
    assert parse_duration("2h") == 7200 and parse_duration("90") == 90
    for bad in ("soon", "-5s", "inf"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_input_topic_override():
    t = Topics(prefix="p.", responses_override="chat")
    assert t.responses == "chat" and t.classified == "p.classified"
    with pytest.raises(ValueError, match="unknown topic role"):
        t.name("nope")


def test_classifier_precision_is_checked():
    assert Settings.from_env({"VALUEDRIFT_CLASSIFIER_PRECISION": "fp16"}).classifier_precision == "fp16"
    assert Settings.from_env({}).classifier_precision == "auto"
    with pytest.raises(ValueError, match="must be auto, int8, fp16 or fp32"):
        Settings.from_env({"VALUEDRIFT_CLASSIFIER_PRECISION": "half"})


def test_context_turns_reach_the_input_adapter():
    s = Settings.from_env({"VALUEDRIFT_INPUT_CONTEXT_TURNS": "2", "VALUEDRIFT_INPUT_FORMAT": "transcript"})
    assert s.adapter_config().context_turns == 2 and Settings().adapter_config().context_turns == 0
    with pytest.raises(ValueError, match="--context-turns"):
        Settings(input_context_turns=-1)


def test_batch_sizes_are_named_apart_and_checked():
    s = Settings.from_env({"VALUEDRIFT_POLL_BATCH_SIZE": "64", "VALUEDRIFT_INFERENCE_BATCH_SIZE": "8"})
    assert (s.poll_batch_size, s.inference_batch_size) == (64, 8)
    assert Settings().inference_batch_size == 0  # the classifier's own choice
    with pytest.raises(ValueError, match="poll_batch_size"):
        Settings(poll_batch_size=0)
    with pytest.raises(ValueError, match="inference_batch_size"):
        Settings(inference_batch_size=-1)
    with pytest.raises(ValueError, match="VALUEDRIFT_BATCH_SIZE is no longer read: set VALUEDRIFT_POLL_BATCH_SIZE"):
        Settings.from_env({"VALUEDRIFT_BATCH_SIZE": "64"})


def test_the_reference_lists_every_setting_with_its_variable_default_and_help():
    rows = {r.name: r for r in settings_reference()}
    assert list(rows) == [f.name for f in dataclasses.fields(Settings)]
    defaults = Settings()
    for name, row in rows.items():
        assert row.env == "VALUEDRIFT_" + name.upper() and row.help
        value = getattr(defaults, name)
        if isinstance(value, float) and name.endswith("_seconds"):
            assert parse_duration(row.default) == value, name
        elif isinstance(value, bool):
            assert row.default == str(value).lower(), name
        elif name != "datadir":  # computed from $XDG_CACHE_HOME
            assert row.default == ("" if value is None else str(value)), name
    assert rows["poll_batch_size"].option == "--poll-batch-size" and rows["metrics_host"].option is None


def test_the_default_alert_settings_are_the_alert_policy_defaults():
    assert Settings().alert_policy() == AlertPolicy()
    assert AlertPolicy().policy_config == PolicyConfig()

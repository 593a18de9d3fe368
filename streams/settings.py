"""Worker and replay settings, each declared once with its default and help: one source of truth for the
environment variables, the command-line options and the settings reference.

Every field ``x`` can be set with the environment variable ``VALUEDRIFT_X``.

>>> s = Settings.from_env({"VALUEDRIFT_WINDOW_SECONDS": "60", "VALUEDRIFT_BROKER": "tansu://127.0.0.1:9999"})
>>> s.window_seconds, s.broker.embedded
(60.0, True)
>>> Settings.from_env({"VALUEDRIFT_PARTITIONS": "many"})
Traceback (most recent call last):
...
ValueError: VALUEDRIFT_PARTITIONS='many' is not a valid int
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from valuedrift.classifier.base import PRECISION_CHOICES
from valuedrift.streams.core.alerting import RULES, AlertPolicy
from valuedrift.streams.core.clock import DEFAULT_MAX_SKEW_SECONDS
from valuedrift.streams.core.topics import Topics
from valuedrift.streams.core.windowing import MAX_WINDOW_SECONDS, MIN_WINDOW_SECONDS
from valuedrift.streams.security import KafkaSecurity

_POLICY = AlertPolicy()  # the alert defaults live in valuedrift.streams.core.alerting; settings only expose them

ENV_PREFIX = "VALUEDRIFT_"
DEFAULT_BROKER = "kafka://127.0.0.1:9092"
# Variables no longer read: setting one is an error that names what to set instead.
RENAMED_ENV = {"VALUEDRIFT_BATCH_SIZE": "VALUEDRIFT_POLL_BATCH_SIZE (messages taken from Kafka at once; the "
                                        "classifier's batch is VALUEDRIFT_INFERENCE_BATCH_SIZE)"}


@dataclass(frozen=True)
class BrokerURL:
    """Where Kafka is. ``kafka://h1:9092,h2:9092`` is a real cluster; ``tansu://h:p`` the embedded broker.

    The embedded broker (Tansu) reports wrong end offsets for multi-record
    batches, so against it producers send one record per batch.
    """

    scheme: str
    hosts: tuple[str, ...]
    security: KafkaSecurity = field(default_factory=KafkaSecurity, compare=False)

    @classmethod
    def parse(cls, url: str) -> BrokerURL:
        scheme, sep, rest = url.partition("://")
        if not sep:
            scheme, rest = "kafka", url
        if scheme not in ("kafka", "tansu"):
            raise ValueError(f"broker URL {url!r}: scheme must be kafka:// (a Kafka cluster) or tansu:// (embedded)")
        hosts = tuple(h.strip() for h in rest.replace(";", ",").split(",") if h.strip())
        for h in hosts:
            host, _, port = h.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"broker URL {url!r}: {h!r} is not host:port")
        if not hosts:
            raise ValueError(f"broker URL {url!r} names no host:port")
        # SASL/TLS come from the environment only (secrets never on a command line); the embedded
        # broker is plaintext on loopback
        return cls(scheme, hosts, KafkaSecurity() if scheme == "tansu" else KafkaSecurity.from_env())

    @property
    def embedded(self) -> bool:
        return self.scheme == "tansu"

    @property
    def bootstrap(self) -> str:
        """Comma-separated host:port list for aiokafka."""
        return ",".join(self.hosts)

    def client_options(self) -> dict[str, Any]:
        """aiokafka keyword arguments: bootstrap servers plus SASL/TLS settings."""
        return {"bootstrap_servers": self.bootstrap, **self.security.aiokafka_options()}

    @property
    def faust(self) -> str:
        """Broker string in Faust's format."""
        return ";".join(f"kafka://{h}" for h in self.hosts)

    def __str__(self) -> str:
        return f"{self.scheme}://{','.join(self.hosts)}"


def _default_datadir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "valuedrift" / "worker"


def parse_combine(text: str) -> tuple[str, int, int]:
    """Parse the policy's combine mode: ``any`` or ``K-of-N``.

    >>> parse_combine("any"), parse_combine("2-of-10")
    (('any', 2, 10), ('k_of_n', 2, 10))
    """
    t = text.strip().lower()
    if t == "any":
        return "any", _POLICY.k, _POLICY.n
    m = re.fullmatch(r"(\d+)\s*-?of-?\s*(\d+)", t)
    if not m:
        raise ValueError(f"combine must be 'any' or 'K-of-N' (e.g. 2-of-10), got {text!r}")
    return "k_of_n", int(m.group(1)), int(m.group(2))


WORKER, REPLAY, TOPICS = "worker", "replay", "topics"  # the commands that take a setting as an option
RULE_COMMANDS = (WORKER, REPLAY)


@dataclass(frozen=True)
class Declared:
    """What users are told about a setting: its meaning and the options that set it.

    ``commands``: the commands that take it as an option, named ``flag`` (default ``--field-name``);
    ``kind``: ``duration`` (seconds; an option takes 90s, 5m...) or ``list`` (a repeatable option, joined with
    commas); ``shown``: the default as help shows it, where the value is computed; ``old_flag``: a former name
    of the option, still accepted.
    """

    help: str
    commands: tuple[str, ...] = ()
    flag: str | None = None
    kind: str | None = None
    shown: str | None = None
    old_flag: str | None = None


def setting(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, **about: Any) -> Any:
    """A Settings field with its ``Declared`` help and options: ``setting(300.0, help=..., commands=...)``."""
    meta = {"declared": Declared(**about)}
    if factory is not None:
        if meta["declared"].shown is None:
            raise TypeError("a setting with a default factory needs shown=, the default as help shows it")
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _combine_text(policy: AlertPolicy) -> str:
    return "any" if policy.combine == "any" else f"{policy.k}-of-{policy.n}"


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs; defaults here are the project's defaults everywhere.

    Each field is declared once, with its help (``setting``): the environment variable ``VALUEDRIFT_<FIELD>``,
    the options of ``worker`` and ``replay`` (``valuedrift.ops.cli_settings``) and ``settings_reference`` are
    made from it.
    """

    broker: BrokerURL = setting(
        factory=lambda: BrokerURL.parse(DEFAULT_BROKER), shown=DEFAULT_BROKER, commands=(WORKER, TOPICS),
        help="kafka://host:port[,host:port] for a Kafka cluster, tansu://host:port for the embedded broker")
    window_seconds: float = setting(
        300.0, kind="duration", flag="--window", commands=RULE_COMMANDS,
        help=f"event-time window size, e.g. 5m (from {MIN_WINDOW_SECONDS:g} s to a year)")
    lateness_seconds: float = setting(30.0, kind="duration", flag="--lateness", commands=RULE_COMMANDS,
                                      help="allowed lateness, e.g. 30s")
    idle_close_seconds: float = setting(
        300.0, kind="duration", flag="--idle-close", commands=(WORKER,),
        help="close a key's open windows after this much wall-clock silence (0 = never)")
    max_clock_skew_seconds: float = setting(
        DEFAULT_MAX_SKEW_SECONDS, kind="duration", flag="--max-clock-skew", commands=RULE_COMMANDS,
        help="an event whose time is further ahead of the time it is read (its Kafka timestamp) is refused, e.g. "
             "5m: dead-lettered by the worker, a bad record in replay")
    epsilon: float = setting(_POLICY.epsilon, commands=RULE_COMMANDS, help="the method's |ΔS| threshold in nats")
    z_threshold: float = setting(_POLICY.z, flag="--z", commands=RULE_COMMANDS,
                                 help="ΔS significance threshold in standard errors")
    trend_z: float = setting(_POLICY.trend_z, commands=RULE_COMMANDS,
                             help="trend-test threshold in standard errors")
    trend_windows: int = setting(_POLICY.trend_windows, commands=RULE_COMMANDS, help="blocks in the trend test")
    alert_min_n: int = setting(
        _POLICY.min_n, flag="--min-n", commands=RULE_COMMANDS,
        help="responses the rules need to judge: smaller windows are merged with the next ones")
    alert_page_on: str = setting(
        "", flag="--page-on", commands=RULE_COMMANDS,
        help="category codes, comma-separated (e.g. g2): a significant rise in one's share opens a critical drift "
             "episode even when S barely moves")
    alert_examples: int = setting(
        _POLICY.examples, help="event ids per grown category in an alert (kept per window; 0 = none, at most 100)")
    alert_rules: str = setting(",".join(_POLICY.rules), flag="--rules", commands=RULE_COMMANDS,
                               help=f"alert rules, comma-separated, from {', '.join(RULES)}")
    alert_signals: str = setting(",".join(_POLICY.signals), flag="--signals", commands=RULE_COMMANDS,
                                 help="rules whose firing opens a drift episode")
    alert_combine: str = setting(_combine_text(_POLICY), flag="--combine", commands=RULE_COMMANDS,
                                 help="'any' signal, or 'K-of-N': K distinct rules within N windows")
    alert_clear_windows: int = setting(_POLICY.clear_windows, flag="--clear-windows", commands=RULE_COMMANDS,
                                       help="quiet windows that close a drift episode (hysteresis)")
    alert_cooldown_windows: int = setting(_POLICY.cooldown_windows, flag="--cooldown-windows", commands=RULE_COMMANDS,
                                          help="windows after an episode opens before another may open")
    alert_keys: int = setting(_POLICY.family_size, flag="--keys", commands=RULE_COMMANDS,
                              help="number of monitored keys: z thresholds are Bonferroni-adjusted for them")
    classifier: str = setting("default", commands=RULE_COMMANDS,
                              help="default | accurate | rules | exported model folder")
    classifier_precision: str = setting(
        "auto", flag="--precision", commands=(WORKER,),
        help=f"ONNX precision: auto (fp16 on CUDA, int8 on CPU) | {' | '.join(PRECISION_CHOICES[1:])}")
    inference_batch_size: int = setting(
        0, commands=RULE_COMMANDS,
        help="pairs per classifier call (0 = the classifier's choice: 1 for int8, 32 for fp32/fp16 on CPU, 256 on "
             "CUDA); above 1, int8 results depend on their batch mates")
    poll_batch_size: int = setting(
        1000, commands=(WORKER,), old_flag="--batch-size",
        help="most messages a stage takes from Kafka at once; the classifier gets them in one call")
    batch_within_seconds: float = setting(0.2, kind="duration",
                                          help="how long a stage waits for a poll batch to fill")
    max_message_bytes: int = setting(
        1_000_000, help="larger input messages are dead-lettered (replay --topic: bad records)")
    alert_sinks: str = setting(
        "", kind="list", flag="--alert-sink", commands=(WORKER,),
        help="also deliver alerts to: stdout | jsonl:PATH | webhook:URL (repeatable; webhook bodies are signed "
             "with VALUEDRIFT_WEBHOOK_SECRET)")
    metrics_port: int = setting(0, commands=(WORKER,),
                                help="serve Prometheus metrics on this port of metrics_host (0 = off)")
    metrics_host: str = setting("127.0.0.1", help="address the Prometheus metrics are served on")
    correct_confusion: bool = setting(
        True, help="add entropy_corrected from the classifier's model card when it has one")
    max_live_keys: int = setting(
        100_000, help="keys with open windows per worker; events of further keys are dead-lettered")
    partitions: int = setting(4, commands=(WORKER, TOPICS), help="partitions of the pipeline's topics")
    topic_prefix: str = setting("valuedrift.", commands=(WORKER, TOPICS), help="prefix of every topic name")
    input_topic: str | None = setting(
        None, commands=(WORKER,), help="read responses from this existing topic (none: the prefix's responses topic)")
    input_format: str = setting(
        "own", commands=(WORKER,), help="format of the input messages: own | openai | transcript | mapped")
    input_map: str = setting(
        "", commands=(WORKER,),
        help="field paths, FIELD=PATH,... or a .json/.toml file (id, monitor_key, event_time, prompt, response, "
             "transcript)")
    input_key: str | None = setting(None, commands=(WORKER,), help="monitor key for input records that carry none")
    input_context_turns: int = setting(
        0, flag="--context-turns", commands=(WORKER,),
        help="transcript/openai input: earlier turns appended to the prompt, for a classifier trained with them "
             "(classifier prepare --context-turns)")
    app_id: str = setting("valuedrift", commands=(WORKER,), help="Faust app id (consumer group)")
    datadir: Path = setting(factory=_default_datadir, shown="~/.cache/valuedrift/worker", commands=(WORKER,),
                            help="worker data directory (under $XDG_CACHE_HOME when that is set)")
    session_timeout_seconds: float = setting(10.0, kind="duration",
                                             help="Kafka consumer session timeout")
    log_level: str = setting("WARNING", commands=(WORKER,), help="DEBUG, INFO, WARNING...")

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions}")
        if self.poll_batch_size < 1:
            raise ValueError(f"poll_batch_size (--poll-batch-size, VALUEDRIFT_POLL_BATCH_SIZE) must be >= 1, got "
                             f"{self.poll_batch_size}")
        if self.inference_batch_size < 0:
            raise ValueError(f"inference_batch_size (--inference-batch-size, VALUEDRIFT_INFERENCE_BATCH_SIZE) must be "
                             f">= 0 (0 = the classifier's choice), got {self.inference_batch_size}")
        if self.classifier_precision not in PRECISION_CHOICES:
            raise ValueError(f"classifier precision (--precision, VALUEDRIFT_CLASSIFIER_PRECISION) must be "
                             f"{', '.join(PRECISION_CHOICES[:-1])} or {PRECISION_CHOICES[-1]}, "
                             f"got {self.classifier_precision!r}")
        if not MIN_WINDOW_SECONDS <= self.window_seconds <= MAX_WINDOW_SECONDS:
            raise ValueError(f"window_seconds (--window) must be from {MIN_WINDOW_SECONDS:g} s to a year, got "
                             f"{self.window_seconds!r}: use e.g. 60s or 5m")
        if not (self.lateness_seconds >= 0 and math.isfinite(self.lateness_seconds)):
            raise ValueError(f"lateness_seconds (--lateness) must be >= 0, got {self.lateness_seconds!r}")
        if not (self.max_clock_skew_seconds > 0 and math.isfinite(self.max_clock_skew_seconds)):
            raise ValueError(f"max_clock_skew_seconds must be > 0 seconds, got {self.max_clock_skew_seconds!r}")
        if self.idle_close_seconds < 0:
            raise ValueError(f"idle_close_seconds must be >= 0 (0 disables), got {self.idle_close_seconds}")
        if not 0 <= self.metrics_port < 65536:
            raise ValueError(f"metrics_port must be 0 (off) or a TCP port, got {self.metrics_port}")
        if self.input_context_turns < 0:
            raise ValueError(f"input_context_turns (--context-turns) must be >= 0, got {self.input_context_turns}")
        if self.max_live_keys < 1:
            raise ValueError(f"max_live_keys must be >= 1, got {self.max_live_keys}")
        if not 0 <= self.alert_examples <= 100:
            raise ValueError(f"alert_examples must be 0 to 100 event ids, got {self.alert_examples}")
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be >= 1024, got {self.max_message_bytes}")

    def alert_policy(self, categories: tuple | None = None):  # noqa: ANN201 - returns alerting.AlertPolicy
        """The alert policy these settings describe (``categories``: the classifier taxonomy's, for the names and
        directions alerts give)."""
        def names(csv: str) -> tuple[str, ...]:
            return tuple(r.strip() for r in csv.split(",") if r.strip())

        combine, k, n = parse_combine(self.alert_combine)
        return AlertPolicy(epsilon=self.epsilon, z=self.z_threshold, trend_z=self.trend_z,
                           trend_windows=self.trend_windows, rules=names(self.alert_rules),
                           signals=names(self.alert_signals), combine=combine, k=k, n=n,
                           clear_windows=self.alert_clear_windows, cooldown_windows=self.alert_cooldown_windows,
                           family_size=self.alert_keys, min_n=self.alert_min_n, examples=self.alert_examples,
                           categories=categories, page_on=names(self.alert_page_on))

    def window_config(self, categories: tuple[str, ...], confusion: Any = None):  # noqa: ANN201 - WindowConfig
        """The window configuration for a taxonomy's category codes and, unless ``correct_confusion`` is
        off, the classifier's held-out confusion matrix (for ``entropy_corrected``)."""
        from valuedrift.streams.core.windowing import WindowConfig

        matrix = tuple(tuple(float(x) for x in row) for row in confusion) if confusion and self.correct_confusion \
            else None
        return WindowConfig(size=self.window_seconds, lateness=self.lateness_seconds, categories=categories,
                            confusion=matrix, min_n=self.alert_min_n, examples=self.alert_examples)

    def pipeline(self, codes: tuple[str, ...], confusion: Any = None, categories: tuple | None = None):  # noqa: ANN201
        """The per-record core (``valuedrift.streams.core.pipeline.Pipeline``) these settings describe, for a
        classifier's category codes, held-out confusion matrix and taxonomy categories (names and directions)."""
        from valuedrift.streams.core.pipeline import Pipeline

        return Pipeline(self.window_config(codes, confusion), self.alert_policy(categories))

    def adapter_config(self):  # noqa: ANN201 - returns valuedrift.streams.adapters.AdapterConfig
        """How input messages map onto response events (ValueError names a bad format or map)."""
        from valuedrift.streams.adapters import AdapterConfig, FieldMap, load_map, parse_map

        text = self.input_map.strip()
        fields = FieldMap() if not text else load_map(text) if text.endswith((".json", ".toml")) else parse_map(text)
        return AdapterConfig(format=self.input_format, fields=fields, default_key=self.input_key,
                             context_turns=self.input_context_turns)

    @property
    def sink_specs(self) -> list[str]:
        """The extra alert sinks, validated (ValueError names a bad one)."""
        from valuedrift.streams.sinks import parse_sink

        specs = [x.strip() for x in self.alert_sinks.split(",") if x.strip()]
        for spec in specs:
            parse_sink(spec)
        return specs

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix, responses_override=self.input_topic)

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with the given fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``VALUEDRIFT_*`` variables, then apply explicit overrides (CLI options)."""
        env = os.environ if environ is None else environ
        for old, new in RENAMED_ENV.items():
            if old in env:
                raise ValueError(f"{old} is no longer read: set {new} instead")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _convert(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("broker"), str):
            values["broker"] = BrokerURL.parse(values["broker"])
        if isinstance(values.get("datadir"), str):
            values["datadir"] = Path(values["datadir"])
        return cls(**values)

    def env(self) -> dict[str, str]:
        """Return these settings as ``VALUEDRIFT_*`` variables (to start a worker process with them)."""
        return {ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
                for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


_BOOLS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _convert(name: str, raw: str, typ: Any) -> Any:
    t = str(typ)
    if t.startswith("bool"):
        if raw.strip().lower() not in _BOOLS:
            raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
        return _BOOLS[raw.strip().lower()]
    try:
        if t.startswith("int"):
            return int(raw)
        if t.startswith("float"):
            return float(raw)
    except ValueError:
        kind = "int" if t.startswith("int") else "float"
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    if name == "broker":
        return BrokerURL.parse(raw)
    return raw


ENV_NAMES = tuple(ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings))


def declared(f: dataclasses.Field) -> Declared:
    """The help and options declared for a Settings field."""
    return f.metadata["declared"]


def env_name(f: dataclasses.Field) -> str:
    return ENV_PREFIX + f.name.upper()


def option_flag(f: dataclasses.Field) -> str | None:
    """The option that sets the field (``--field-name`` unless declared otherwise); None when no command takes it."""
    d = declared(f)
    return (d.flag or "--" + f.name.replace("_", "-")) if d.commands else None


def default_text(f: dataclasses.Field) -> str:
    """The field's default as a user writes it; empty when the default is to have none.

    >>> fields = {f.name: f for f in dataclasses.fields(Settings)}
    >>> [default_text(fields[n]) for n in ("window_seconds", "epsilon", "input_topic", "correct_confusion")]
    ['300s', '0.001', '', 'true']
    """
    d = declared(f)
    if d.shown is not None:
        return d.shown
    value = f.default
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return format_duration(value) if d.kind == "duration" else str(value)


def format_duration(seconds: float) -> str:
    """``300.0`` as ``300s``: what ``parse_duration`` reads back."""
    return f"{seconds:g}s"


class SettingRow(NamedTuple):
    """One setting, as a reference lists it."""

    name: str
    env: str
    default: str  # as a user writes it; empty: none
    help: str
    option: str | None  # the option that sets it, in ``commands``
    commands: tuple[str, ...]


def settings_reference() -> list[SettingRow]:
    """Every setting with its environment variable, default, help and option, in declaration order.

    >>> row = settings_reference()[1]
    >>> row.option, row.env, row.default, row.commands
    ('--window', 'VALUEDRIFT_WINDOW_SECONDS', '300s', ('worker', 'replay'))
    """
    return [SettingRow(f.name, env_name(f), default_text(f), declared(f).help, option_flag(f), declared(f).commands)
            for f in dataclasses.fields(Settings)]


def parse_duration(text: str) -> float:
    """Return seconds from ``90``, ``90s``, ``5m``, ``2h`` or ``1d``; raise ValueError otherwise.

    >>> parse_duration("5m"), parse_duration("1.5"), parse_duration("250ms")
    (300.0, 1.5, 0.25)
    """
    t = text.strip().lower()
    for suffix, mult in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0)):
        if t.endswith(suffix):
            t, factor = t[: -len(suffix)], mult
            break
    else:
        factor = 1.0
    try:
        value = float(t) * factor
    except ValueError:
        raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 5m, 2h") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 5m, 2h")
    return value

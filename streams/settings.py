"""Worker settings and their defaults: one source of truth, read from CLI options or the environment.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuedrift.classifier.base import PRECISION_CHOICES
from valuedrift.streams.core.alerting import AlertPolicy
from valuedrift.streams.core.clock import DEFAULT_MAX_SKEW_SECONDS
from valuedrift.streams.core.topics import Topics
from valuedrift.streams.core.windowing import MAX_WINDOW_SECONDS, MIN_WINDOW_SECONDS
from valuedrift.streams.security import KafkaSecurity

_POLICY = AlertPolicy()  # the alert defaults live in valuedrift.streams.core.alerting; settings only expose them

ENV_PREFIX = "VALUEDRIFT_"
DEFAULT_BROKER = "kafka://127.0.0.1:9092"


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


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs; defaults here are the project's defaults everywhere."""

    broker: BrokerURL = field(default_factory=lambda: BrokerURL.parse(DEFAULT_BROKER))
    app_id: str = "valuedrift"
    topic_prefix: str = "valuedrift."
    input_topic: str | None = None
    input_format: str = "own"  # own | openai | transcript | mapped (valuedrift.streams.adapters)
    input_map: str = ""  # FIELD=PATH,... or a .json/.toml file of them
    input_key: str | None = None  # monitor key for records that carry none
    input_context_turns: int = 0  # transcript / openai input: earlier turns appended to the prompt (0 = none)
    partitions: int = 4
    window_seconds: float = 300.0  # at least MIN_WINDOW_SECONDS
    lateness_seconds: float = 30.0
    max_clock_skew_seconds: float = DEFAULT_MAX_SKEW_SECONDS  # events further ahead of their observed time: rejected
    idle_close_seconds: float = 300.0
    epsilon: float = _POLICY.epsilon
    z_threshold: float = _POLICY.z
    trend_z: float = _POLICY.trend_z
    trend_windows: int = _POLICY.trend_windows
    alert_min_n: int = _POLICY.min_n  # responses per block: smaller windows are merged forward before the rules
    alert_page_on: str = ""  # comma-separated category codes whose significant rise pages by itself (critical)
    alert_examples: int = _POLICY.examples  # event ids per grown category in an alert (kept per window; 0 = none)
    alert_rules: str = ",".join(_POLICY.rules)
    alert_signals: str = ",".join(_POLICY.signals)  # rules whose firing opens a drift episode
    alert_combine: str = "any"  # or "K-of-N", e.g. "2-of-10"
    alert_clear_windows: int = _POLICY.clear_windows
    alert_cooldown_windows: int = _POLICY.cooldown_windows
    alert_keys: int = _POLICY.family_size  # monitored keys, for the Bonferroni adjustment
    classifier: str = "default"
    classifier_precision: str = "auto"  # ONNX models: auto (fp16 on CUDA, int8 on CPU) | int8 | fp16 | fp32
    batch_size: int = 1000  # most messages a stage takes from Kafka at once; the classifier gets them in one call
    batch_within_seconds: float = 0.2
    max_message_bytes: int = 1_000_000
    metrics_port: int = 0  # Prometheus /metrics on metrics_host:metrics_port; 0 = off
    metrics_host: str = "127.0.0.1"
    alert_sinks: str = ""  # besides the alerts topic, comma-separated: stdout, jsonl:PATH, webhook:URL
    correct_confusion: bool = True  # add entropy_corrected from the classifier's model card when it has one
    max_live_keys: int = 100_000  # per worker: keys with open windows; events of further keys are dead-lettered
    datadir: Path = field(default_factory=_default_datadir)
    session_timeout_seconds: float = 10.0
    log_level: str = "WARNING"

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
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

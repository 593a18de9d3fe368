"""Prometheus metrics of a worker, served on 127.0.0.1 by default (``--metrics-port``; 0 = off).

One registry per worker process (not prometheus_client's global one), so tests and embedded uses do not
collide. Per-key series are capped (``max_keys``) to keep the number of series bounded.

>>> m = WorkerMetrics(max_keys=1)
>>> m.entropy("model-a", 1.2); m.entropy("model-b", 0.9)  # the second key is beyond the cap
>>> b"valuedrift_entropy_nats" in m.exposition() and b"model-b" not in m.exposition()
True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server


class WorkerMetrics:
    def __init__(self, max_keys: int = 1000) -> None:
        self.registry = r = CollectorRegistry()
        self.max_keys = max_keys
        self._keys: set[str] = set()
        self.events_in = Counter("valuedrift_events_in", "input messages read", registry=r)
        self.classified = Counter("valuedrift_classified", "responses classified", registry=r)
        self.dead_letters = Counter("valuedrift_dead_letters", "messages sent to the dead-letter topic", ["stage"],
                                    registry=r)
        self.late = Counter("valuedrift_late_events", "events after their window closed (sent to the late topic)",
                            registry=r)
        self.windows = Counter("valuedrift_windows", "window statistics emitted", registry=r)
        self.alerts = Counter("valuedrift_alerts", "alerts emitted", ["rule", "severity"], registry=r)
        self.sink_failures = Counter("valuedrift_sink_undelivered", "alerts a sink could not deliver",
                                     ["sink", "why"], registry=r)
        self.rechecked = Counter("valuedrift_classifier_rechecked",
                                 "int8 near ties recomputed in fp32 (the model card's int8_rechecked_share: 6.2 % "
                                 "of the default's validation pairs; a much larger share means slower "
                                 "classification and traffic unlike the labelled data)", registry=r)
        self.batch_seconds = Histogram("valuedrift_classifier_batch_seconds", "classifier time per batch",
                                       buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=r)
        self.lag = Gauge("valuedrift_consumer_lag", "input messages not yet read, per partition", ["partition"],
                         registry=r)
        self.live_keys = Gauge("valuedrift_live_keys", "monitored keys with open windows on this worker",
                               registry=r)
        self._entropy = Gauge("valuedrift_entropy_nats", "S of the key's latest closed window", ["key"], registry=r)
        self._share = Gauge("valuedrift_category_share", "share of each category in the key's latest closed window",
                            ["key", "category"], registry=r)
        self.drift_moves = Counter("valuedrift_drift_moves", "drift alerts by the category that moved most and the "
                                   "direction it means", ["category", "direction"], registry=r)

    def _tracked(self, key: str) -> bool:
        if key in self._keys or len(self._keys) < self.max_keys:
            self._keys.add(key)
            return True
        return False

    def entropy(self, key: str, value: float) -> None:
        if self._tracked(key):
            self._entropy.labels(key=key).set(value)

    def shares(self, key: str, counts: dict[str, int]) -> None:
        """The category shares of a key's latest window (per-key series are capped like the entropy's)."""
        n = sum(counts.values())
        if n and self._tracked(key):
            for code, c in counts.items():
                self._share.labels(key=key, category=code).set(c / n)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` over HTTP in a background thread."""
        start_http_server(port, addr=host, registry=self.registry)

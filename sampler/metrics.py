"""Progress and throughput of the sampler: counters for logs, and the same as Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any


class SamplerMetrics:
    """Counters of one sampler process; ``registry`` (a prometheus_client CollectorRegistry) exports them."""

    def __init__(self, registry: Any = None) -> None:
        self.started = time.monotonic()
        self.requests = 0
        self.responses = 0
        self.tokens = 0
        self.dead_letters = 0
        self.retries = 0
        self.in_flight = 0
        self.generation_seconds = 0.0
        self._last = (self.started, 0, 0)
        self._prom: dict[str, Any] = {}
        if registry is not None:
            from prometheus_client import Counter, Gauge, Histogram

            self._prom = {
                "requests": Counter("valuedrift_sampler_requests", "probe requests completed", registry=registry),
                "responses": Counter("valuedrift_sampler_responses", "response events produced", registry=registry),
                "tokens": Counter("valuedrift_sampler_generated_tokens", "generated tokens", registry=registry),
                "dead_letters": Counter("valuedrift_sampler_dead_letters", "requests dead-lettered",
                                        registry=registry),
                "retries": Counter("valuedrift_sampler_retries", "generation retries", registry=registry),
                "in_flight": Gauge("valuedrift_sampler_in_flight", "requests in flight", registry=registry),
                "latency": Histogram("valuedrift_sampler_generation_seconds", "generation time per request",
                                     buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=registry),
            }

    def _inc(self, name: str, n: float = 1) -> None:
        if name in self._prom:
            self._prom[name].inc(n)

    def request_done(self, responses: int, tokens: int | None, seconds: float) -> None:
        self.requests += 1
        self.responses += responses
        self.tokens += tokens or 0
        self.generation_seconds += seconds
        self._inc("requests")
        self._inc("responses", responses)
        self._inc("tokens", tokens or 0)
        if "latency" in self._prom:
            self._prom["latency"].observe(seconds)

    def dead_letter(self) -> None:
        self.dead_letters += 1
        self._inc("dead_letters")

    def retry(self) -> None:
        self.retries += 1
        self._inc("retries")

    def set_in_flight(self, n: int) -> None:
        self.in_flight = n
        if "in_flight" in self._prom:
            self._prom["in_flight"].set(n)

    def snapshot(self) -> dict[str, float]:
        now = time.monotonic()
        t0, r0, k0 = self._last
        dt = max(now - t0, 1e-9)
        out = {"requests": self.requests, "responses": self.responses, "tokens": self.tokens,
               "dead_letters": self.dead_letters, "retries": self.retries, "in_flight": self.in_flight,
               "responses_per_s": (self.responses - r0) / dt, "tokens_per_s": (self.tokens - k0) / dt}
        self._last = (now, self.responses, self.tokens)
        return out

    def progress_line(self) -> str:
        s = self.snapshot()
        return (f"sampler: {s['requests']} requests, {s['responses']} responses, {s['tokens']} tokens, "
                f"{s['responses_per_s']:.1f} responses/s, {s['tokens_per_s']:.1f} tokens/s, "
                f"in flight {s['in_flight']}, retries {s['retries']}, dead letters {s['dead_letters']}")

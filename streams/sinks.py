"""Alert sinks besides the Kafka alerts topic: stdout, a JSONL file, a webhook (pure asyncio, no Kafka).

Each sink has a bounded queue and its own delivery task, so a slow or failing sink never blocks the
pipeline: when its queue is full the alert is dropped *for that sink* and counted; deliveries that fail
after the retries are counted and logged. The Kafka alerts topic stays the primary, durable output.

Webhook deliveries are ``POST`` of the alert's JSON, signed with the secret in ``VALUEDRIFT_WEBHOOK_SECRET``
(never on the command line) over a time stamp, a delivery id and the body, so a receiver can check where an
alert came from and refuse a replayed one (``valuedrift.streams.core.webhook_signature``; ``valuedrift webhook
verify`` checks one from the shell). A webhook without a secret is sent unsigned, with a warning at start-up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuedrift.streams.core.webhook_signature import DELIVERY_HEADER, new_delivery, signed_headers

log = logging.getLogger("valuedrift.sinks")

KINDS = ("stdout", "jsonl", "webhook")


def parse_sink(spec: str) -> tuple[str, str]:
    """``stdout``, ``jsonl:PATH`` or ``webhook:URL`` → (kind, target); ValueError naming the problem.

    >>> parse_sink("jsonl:/tmp/alerts.jsonl"), parse_sink("webhook:https://hooks.example/x")
    (('jsonl', '/tmp/alerts.jsonl'), ('webhook', 'https://hooks.example/x'))
    """
    kind, _, target = spec.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"alert sink {spec!r}: kind must be one of {', '.join(KINDS)} (e.g. jsonl:alerts.jsonl)")
    if kind == "stdout" and target:
        raise ValueError(f"alert sink {spec!r}: stdout takes no target")
    if kind == "jsonl" and not target:
        raise ValueError(f"alert sink {spec!r}: jsonl needs a path, e.g. jsonl:/var/log/valuedrift/alerts.jsonl")
    if kind == "webhook" and not target.startswith(("http://", "https://")):
        raise ValueError(f"alert sink {spec!r}: webhook needs an http(s) URL")
    return kind, target


@dataclass
class SinkStats:
    delivered: int = 0
    dropped: int = 0  # queue full: the sink could not keep up
    failed: int = 0  # delivery failed after the retries


@dataclass
class Sink:
    """One destination with its bounded queue and delivery task."""

    kind: str
    target: str
    queue_size: int = 1000
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    secret: bytes | None = None
    stats: SinkStats = field(default_factory=SinkStats)
    on_undelivered: Callable[[str, str], None] | None = None  # (sink name, "queue_full" | "failed")

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=self.queue_size)
        self.task: asyncio.Task[None] | None = None
        self.session: Any = None

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind

    def offer(self, body: bytes) -> bool:
        """Queue an alert without waiting; False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait(body)
            return True
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.on_undelivered:
                self.on_undelivered(self.name, "queue_full")
            log.warning("alert sink %s is not keeping up: alert dropped for it (%d so far)", self.name,
                        self.stats.dropped)
            return False

    async def _deliver_once(self, body: bytes, delivery: str) -> None:
        if self.kind == "stdout":
            sys.stdout.write(body.decode() + "\n")
            sys.stdout.flush()
        elif self.kind == "jsonl":
            path = Path(self.target)
            await asyncio.to_thread(_append, path, body)
        else:
            import aiohttp

            if self.session is None:
                self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery}
            if self.secret:  # signed per attempt: each retry carries a fresh time stamp, the same delivery id
                headers.update(signed_headers(body, self.secret, delivery=delivery))
            async with self.session.post(self.target, data=body, headers=headers) as resp:
                if resp.status >= 300:
                    raise RuntimeError(f"HTTP {resp.status}")

    async def _run(self) -> None:
        while True:
            body = await self.queue.get()
            delivery = new_delivery()
            for attempt in range(self.retries + 1):
                try:
                    await self._deliver_once(body, delivery)
                    self.stats.delivered += 1
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - any failure of a sink is counted, never raised
                    if attempt == self.retries:
                        self.stats.failed += 1
                        if self.on_undelivered:
                            self.on_undelivered(self.name, "failed")
                        log.error("alert sink %s failed %d times (%s: %s); alert not delivered there (%d so "
                                  "far)", self.name, attempt + 1, type(err).__name__, err, self.stats.failed)
                    else:
                        await asyncio.sleep(self.backoff * 2 ** attempt)
            self.queue.task_done()

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def close(self, drain_seconds: float = 5.0) -> None:
        if self.task is not None:
            try:
                await asyncio.wait_for(self.queue.join(), drain_seconds)
            except TimeoutError:
                log.warning("alert sink %s: %d alerts undelivered at shutdown", self.name, self.queue.qsize())
            self.task.cancel()
        if self.session is not None:
            await self.session.close()


def _append(path: Path, body: bytes) -> None:
    with path.open("ab") as f:
        f.write(body + b"\n")


class AlertSinks:
    """The configured sinks; ``publish`` never waits on any of them."""

    def __init__(self, specs: Sequence[str], environ: dict[str, str] | None = None, **options: Any) -> None:
        env = os.environ if environ is None else environ
        secret = env.get("VALUEDRIFT_WEBHOOK_SECRET")
        self.sinks = [Sink(kind, target, secret=secret.encode() if secret else None, **options)
                      for kind, target in (parse_sink(s) for s in specs if s.strip())]
        for sink in self.sinks:
            if sink.kind == "webhook" and not secret:
                log.warning("alert sink %s: VALUEDRIFT_WEBHOOK_SECRET is not set, so its deliveries go unsigned and "
                            "a receiver cannot tell them from forgeries", sink.name)

    def publish(self, alert: Any) -> None:
        body = alert.to_bytes() if hasattr(alert, "to_bytes") else json.dumps(alert).encode()
        for sink in self.sinks:
            sink.start()
            sink.offer(body)

    def stats(self) -> dict[str, SinkStats]:
        return {s.name: s.stats for s in self.sinks}

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Give each sink up to ``drain_seconds`` to deliver what is queued, then stop it."""
        for s in self.sinks:
            await s.close(drain_seconds)

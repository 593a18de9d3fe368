"""An example alert consumer in confluent-kafka (librdkafka), the ecosystem's most used client.

Works against a Kafka cluster and against the embedded broker with the settings below; install the client with
``pip install confluent-kafka`` (it is in the ``dev`` extra, not a dependency of valuedrift). Two things to know:

- librdkafka's default ``session.timeout.ms`` (45 s) makes a consumer group join the embedded broker take about
  23 s; 6 s (with a 2 s heartbeat) takes about 3 s, and is a sound value on Kafka too;
- the embedded broker under-reports end offsets to librdkafka (``get_watermark_offsets``), so do not compute lag
  from them there; this consumer does not need them.

It commits an alert's offset only after the handler returned (at-least-once), and skips an alert id it has
handled already (the worker may re-send an alert after a crash; ids are deterministic), keeping the last
``remember`` ids.

Run it: ``python -m valuedrift.ops.alert_consumer_confluent --bootstrap 127.0.0.1:9092 --topic valuedrift.alerts``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

CONSUMER_SETTINGS = {
    "session.timeout.ms": 6000,  # librdkafka's 45 s default: a 23 s group join on the embedded broker
    "heartbeat.interval.ms": 2000,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,  # commit after handling: at-least-once
}


def consume_alerts(bootstrap: str, topic: str, group: str, handle: Callable[[dict[str, Any]], None],
                   max_alerts: int | None = None, timeout: float | None = None, remember: int = 100_000,
                   extra: dict[str, Any] | None = None) -> int:
    """Call ``handle`` once per distinct alert on ``topic``; return how many were handled.

    Stops after ``max_alerts`` distinct alerts or ``timeout`` seconds (None: run until interrupted).
    ``extra``: more librdkafka settings (security, for example ``security.protocol`` and ``sasl.*``).
    """
    from confluent_kafka import Consumer, KafkaException  # noqa: PLC0415 - an optional client

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **CONSUMER_SETTINGS, **(extra or {})})
    seen: OrderedDict[str, None] = OrderedDict()
    handled = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    consumer.subscribe([topic])
    try:
        while (max_alerts is None or handled < max_alerts) and (deadline is None or time.monotonic() < deadline):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            alert = json.loads(msg.value())
            if alert["id"] not in seen:
                handle(alert)
                handled += 1
                seen[alert["id"]] = None
                if len(seen) > remember:
                    seen.popitem(last=False)
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()
    return handled


def main() -> None:
    p = argparse.ArgumentParser(description="Print drift alerts from valuedrift's alerts topic, once each.")
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", default="valuedrift.alerts")
    p.add_argument("--group", default="valuedrift-pager")
    args = p.parse_args()

    def page(alert: dict[str, Any]) -> None:
        if alert["rule"] == "drift":
            print(f"{alert['severity'].upper()}: {alert['message']}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        consume_alerts(args.bootstrap, args.topic, args.group, page)


if __name__ == "__main__":
    main()

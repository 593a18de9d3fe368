"""The confluent-kafka example consumer on the embedded broker: each alert handled once, in a few seconds."""

from __future__ import annotations

import asyncio
import time

import pytest
from valuedrift.ops.alert_consumer_confluent import consume_alerts
from valuedrift.ops.kafka import ensure_topics, send_all
from valuedrift.streams.core.records import Alert

pytestmark = pytest.mark.integration


def alert(i: int, rule: str = "drift") -> Alert:
    return Alert(id=f"m@2026-01-01T00:0{i}:00Z/{rule}", monitor_key="m", window_start=1767225600 + 60 * i,
                 window_end=1767225660 + 60 * i, rule=rule, statistic=1.0, threshold=1.0, severity="warning",
                 message=f"m: drift {i}", evidence={})


def test_the_confluent_consumer_handles_each_alert_once(settings):
    asyncio.run(ensure_topics(settings))
    alerts = [alert(1), alert(2), alert(1), alert(3)]  # the third is a re-sent copy of the first
    asyncio.run(send_all(settings.broker, settings.topics.alerts, [(b"m", a.to_bytes()) for a in alerts]))
    got: list[str] = []
    t0 = time.monotonic()
    n = consume_alerts(settings.broker.client_options()["bootstrap_servers"], settings.topics.alerts,
                       f"{settings.app_id}-pager", lambda a: got.append(a["id"]), max_alerts=3, timeout=60)
    assert n == 3 and got == [alerts[0].id, alerts[1].id, alerts[3].id]
    assert time.monotonic() - t0 < 30  # the group join with librdkafka's defaults alone takes about 23 s

"""aiokafka client settings derived from the worker settings (one place for the embedded broker's quirks)."""

from __future__ import annotations

from typing import Any

from streams.settings import BrokerURL, Settings


def producer_config(broker: BrokerURL) -> dict[str, Any]:
    """Producer settings; against the embedded broker one record per batch (its end-offset defect)."""
    cfg: dict[str, Any] = {**broker.client_options(), "acks": "all", "linger_ms": 5}
    if broker.embedded:
        cfg.update(max_batch_size=1, linger_ms=0)
    return cfg


def consumer_config(settings: Settings, group_id: str) -> dict[str, Any]:
    """Consumer settings for a stage that commits offsets itself, after its output is acknowledged."""
    session_ms = int(settings.session_timeout_seconds * 1000)
    return {
        **settings.broker.client_options(),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": settings.batch_size,
        "session_timeout_ms": session_ms,
        "heartbeat_interval_ms": max(100, session_ms // 8),
        "max_partition_fetch_bytes": max(1024 * 1024, settings.max_message_bytes * 2),
        "fetch_max_bytes": max(4 * 1024 * 1024, settings.max_message_bytes * 2),
    }

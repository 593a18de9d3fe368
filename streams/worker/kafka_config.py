"""aiokafka client settings derived from the worker settings (one place for the embedded broker's quirks)."""

from __future__ import annotations

from typing import Any

from valuedrift.streams.settings import BrokerURL, Settings


def producer_config(broker: BrokerURL) -> dict[str, Any]:
    """Producer settings: acks from all replicas, records batched (up to 256 KiB) for up to 5 ms.

    The embedded broker's end-offset defect (ListOffsets reports the last batch's base offset + 1)
    only hurts readers that stop at the end offset: Faust's changelog recovery, whose producer sends
    one record per batch there (``valuedrift.streams.worker.app.faust_settings``). Nothing reads these topics that way.
    """
    return {**broker.client_options(), "acks": "all", "linger_ms": 5, "max_batch_size": 256 * 1024}


def consumer_config(settings: Settings, group_id: str) -> dict[str, Any]:
    """Consumer settings for a stage that commits offsets itself, after its output is acknowledged."""
    session_ms = int(settings.session_timeout_seconds * 1000)
    return {
        **settings.broker.client_options(),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": settings.poll_batch_size,
        "session_timeout_ms": session_ms,
        "heartbeat_interval_ms": max(100, session_ms // 8),
        "max_partition_fetch_bytes": max(1024 * 1024, settings.max_message_bytes * 2),
        "fetch_max_bytes": max(4 * 1024 * 1024, settings.max_message_bytes * 2),
    }

"""A bounded clock: an event may not claim a time far ahead of when it was observed (pure, no Kafka).

A key's watermark follows the latest event time it has seen, so one event stamped years ahead would send every
later event of the key to ``late``. An event whose time is more than ``max_skew`` seconds ahead of its
reference time (the Kafka message's timestamp in the worker and in ``replay --topic``, the time the file is read
in ``replay``) is rejected with a reason instead: dead-lettered by the worker, counted as a bad record by
replay. It never moves the watermark.

>>> ahead_reason(4070908800.0, reference=1767225600.0, max_skew=300)  # doctest: +ELLIPSIS
'event_time 2099-01-01T00:00:00Z is 2303683200 s ahead of the time it was observed (2026-01-01T00:00:00Z); ...'
>>> ahead_reason(1767225660.0, reference=1767225600.0, max_skew=300) is None
True
"""

from __future__ import annotations

from valuedrift.streams.core.records import format_time

DEFAULT_MAX_SKEW_SECONDS = 300.0  # five minutes: clocks of producers disagree by seconds, not minutes


def ahead_reason(event_time: float, reference: float, max_skew: float) -> str | None:
    """Why an event is too far ahead of its ``reference`` time, or None when it is within ``max_skew``."""
    ahead = event_time - reference
    if ahead <= max_skew:
        return None
    return (f"event_time {format_time(event_time)} is {ahead:.0f} s ahead of the time it was observed "
            f"({format_time(reference)}); more than max_clock_skew_seconds={max_skew:g} s")

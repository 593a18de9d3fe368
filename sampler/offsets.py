"""Which input offsets may be committed while requests finish out of order (pure logic).

A partition's committed offset is the lowest offset still in flight there (or one past the highest done),
so a crash never skips a request whose responses were not all acknowledged.

>>> t = OffsetTracker()
>>> for off in (5, 6, 7):
...     t.start(("p", 0), off)
>>> t.finish(("p", 0), 6)  # 5 is still in flight: the commit point stays at 5
{('p', 0): 5}
>>> t.finish(("p", 0), 5)
{('p', 0): 7}
>>> t.finish(("p", 0), 7)
{('p', 0): 8}
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class OffsetTracker:
    """In-flight offsets per partition; ``finish`` returns the partitions whose commit point advanced."""

    def __init__(self) -> None:
        self._in_flight: dict[Hashable, set[int]] = {}
        self._done_max: dict[Hashable, int] = {}
        self._committed: dict[Hashable, int] = {}

    def start(self, tp: Hashable, offset: int) -> None:
        self._in_flight.setdefault(tp, set()).add(offset)

    def finish(self, tp: Hashable, offset: int) -> dict[Hashable, int]:
        pending = self._in_flight.get(tp)
        if pending is None or offset not in pending:
            return {}  # the partition was revoked meanwhile: its new owner redoes the request
        pending.discard(offset)
        self._done_max[tp] = max(self._done_max.get(tp, -1), offset)
        point = min(pending) if pending else self._done_max[tp] + 1
        if point > self._committed.get(tp, -1):
            self._committed[tp] = point
            return {tp: point}
        return {}

    def commit_point(self, tp: Hashable) -> int | None:
        """The offset to commit for a partition now (None when nothing finished there)."""
        return self._committed.get(tp)

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Drop partitions that were revoked (their in-flight requests will not be committed here)."""
        for tp in tps:
            self._in_flight.pop(tp, None)
            self._done_max.pop(tp, None)
            self._committed.pop(tp, None)

    @property
    def in_flight(self) -> int:
        return sum(len(v) for v in self._in_flight.values())

"""Event-time tumbling windows per monitored key, with a watermark and allowed lateness.

Pure logic, free of Kafka and Faust: the stream worker keeps one ``KeyWindows``
per key in a changelog-backed table; offline replay keeps them in a dict
(``WindowEngine``). Both therefore close the same windows for the same events.

Windows are aligned to the epoch: ``[k·size, (k+1)·size)``. A key's watermark is
the latest event time seen for that key minus the allowed lateness; a window
closes, and its statistic is emitted once, when the watermark passes its end.
An event whose window has already closed is *late*: it is reported, not counted.
Each state remembers the highest source offset applied per partition, so a
message redelivered after a crash is recognised and skipped (effectively-once).

>>> cfg = WindowConfig(size=60, lateness=5)
>>> eng = WindowEngine(cfg)
>>> eng.add("m", 10.0, "g1").closed
[]
>>> eng.add("m", 50.0, "g3").closed
[]
>>> [(w.window_start, w.n, w.counts["g3"]) for w in eng.add("m", 66.0, "g1").closed]
[(0.0, 2, 1)]
>>> eng.add("m", 30.0, "g1").late
True
>>> [(w.window_start, w.n, w.closed_by) for w in eng.flush()]
[(60.0, 1, 'flush')]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from valuedrift.streams.core.blocks import DEFAULT_MIN_N
from valuedrift.streams.core.entropy import delta_se, entropy_se, miller_madow_entropy, plugin_entropy
from valuedrift.streams.core.estimators import confusion_corrected
from valuedrift.streams.core.records import WindowStatistic
from valuedrift.streams.core.taxonomy import CATEGORY_CODES

DEFAULT_EXAMPLES = 5  # example event ids a window keeps per category
MIN_WINDOW_SECONDS = 1.0  # shorter windows hold too few events to mean anything, and ids are kept to the ms
MAX_WINDOW_SECONDS = 366 * 86400.0  # a window of a year: longer ones are a typo


@dataclass(frozen=True)
class WindowConfig:
    """Window size and allowed lateness in seconds, and the category codes being counted."""

    size: float = 300.0
    lateness: float = 30.0
    categories: tuple[str, ...] = CATEGORY_CODES
    confusion: tuple[tuple[float, ...], ...] | None = None  # classifier's held-out confusion (true x predicted)
    min_n: int = DEFAULT_MIN_N  # a window with fewer responses is marked insufficient (the rules merge it forward)
    examples: int = DEFAULT_EXAMPLES  # event ids kept per window and category, for alerts to point at (0: none)

    def __post_init__(self) -> None:
        k = len(self.categories)
        if self.confusion is not None and (len(self.confusion) != k or any(len(r) != k for r in self.confusion)):
            raise ValueError(f"the confusion matrix must be {k}x{k} for categories {list(self.categories)}")
        if not MIN_WINDOW_SECONDS <= self.size <= MAX_WINDOW_SECONDS:
            raise ValueError(f"window size must be from {MIN_WINDOW_SECONDS:g} s to a year, got {self.size!r}: use "
                             f"e.g. 60s or 5m")
        if not self.lateness >= 0:
            raise ValueError(f"allowed lateness must be >= 0 seconds, got {self.lateness!r}")
        # computed once: they are read for every event (not fields, so equality and repr are unchanged)
        object.__setattr__(self, "_size_ms", int(round(self.size * 1000)))
        object.__setattr__(self, "_lateness_ms", int(round(self.lateness * 1000)))

    @property
    def size_ms(self) -> int:
        return self._size_ms  # type: ignore[attr-defined,no-any-return]

    @property
    def lateness_ms(self) -> int:
        return self._lateness_ms  # type: ignore[attr-defined,no-any-return]


def example_rank(event_id: str) -> str:
    """The order in which a window keeps example ids: by SHA-256 of the id, so any arrival order (live, replay,
    a redelivery) keeps the same ones."""
    return hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


def keep_example(kept: list[str], event_id: str, cap: int) -> None:
    """Add ``event_id`` to ``kept`` (at most ``cap`` ids, the lowest ``example_rank`` first).

    >>> kept = []
    >>> for i in ["e1", "e2", "e3", "e4"]:
    ...     keep_example(kept, i, 2)
    >>> kept == sorted(["e1", "e2", "e3", "e4"], key=example_rank)[:2]
    True
    """
    if event_id in kept:
        return
    if len(kept) < cap:
        kept.append(event_id)
    elif cap and example_rank(event_id) < example_rank(kept[-1]):
        kept[-1] = event_id
    else:
        return
    kept.sort(key=example_rank)


MAX_VERSIONS_PER_WINDOW = 8  # distinct classifier versions kept per window (a rolling upgrade needs 2)


@dataclass
class AddResult:
    """What adding one event did: the windows it closed, and whether it was late or a duplicate."""

    closed: list[WindowStatistic] = field(default_factory=list)
    late: bool = False
    duplicate: bool = False
    window_start: float = 0.0
    closed_until: float = 0.0


def window_statistic(key: str, start: float, end: float, categories: Sequence[str], counts: Sequence[float],
                     prob_sums: Sequence[float] | None, closed_by: str,
                     prev: tuple[float, float, float] | None,
                     confusion: Sequence[Sequence[float]] | None = None,
                     versions: Sequence[str] = (), prev_versions: Sequence[str] | None = None,
                     min_n: int = DEFAULT_MIN_N, examples: dict[str, list[str]] | None = None) -> WindowStatistic:
    """Return the statistic of one window from its counts; ``prev`` is (start ms, S, SE) of the key's previous one.

    With the classifier's held-out ``confusion`` matrix, ``entropy_corrected`` is the entropy of the
    category mix estimated by inverting it (``valuedrift.streams.core.estimators.confusion_corrected``).
    ``versions`` are the classifier versions of this window's events, ``prev_versions`` those of the key's
    previous window.
    """
    n = int(sum(counts))
    s = plugin_entropy(counts)
    se = entropy_se(counts)
    if prev is None:
        d = dse = prev_start = None
    else:
        d, dse, prev_start = s - prev[1], delta_se(se, prev[2]), prev[0] / 1000
    sums = counts if prob_sums is None else prob_sums
    soft = plugin_entropy(sums) if n else None
    corrected = None
    if confusion is not None and n:
        corrected = plugin_entropy(confusion_corrected(counts, confusion).clip(0.0, None))
    return WindowStatistic(
        monitor_key=key, window_start=start, window_end=end, n=n,
        counts={c: int(v) for c, v in zip(categories, counts, strict=True)},
        mean_probs={c: v / n for c, v in zip(categories, sums, strict=True)} if n else dict.fromkeys(categories, 0.0),
        entropy=s, entropy_se=se, entropy_mm=miller_madow_entropy(counts), entropy_soft=soft,
        entropy_corrected=corrected,
        delta_entropy=d, delta_se=dse, prev_window_start=prev_start, closed_by=closed_by,  # type: ignore[arg-type]
        insufficient=n < min_n, examples={c: list(v) for c, v in (examples or {}).items() if v},
        classifier_versions=sorted(versions),
        classifier_changed=bool(versions) and prev_versions is not None and set(versions) != set(prev_versions),
    )


class KeyWindows:
    """The open windows and watermark of one monitored key; serialisable with ``to_dict``."""

    __slots__ = ("open", "max_event_ms", "closed_until_ms", "prev", "offsets", "late", "partition", "versions",
                 "prev_versions", "seen_at", "examples")

    def __init__(self) -> None:
        # window start (ms) -> [n, counts..., prob sums...]
        self.open: dict[int, list[float]] = {}
        self.max_event_ms: int | None = None
        self.closed_until_ms: int = 0
        self.prev: tuple[int, float, float] | None = None  # (start ms, S, SE) of the last emitted window
        self.offsets: dict[int, int] = {}
        self.late: int = 0
        self.partition: int | None = None  # the stream partition this key's state lives on
        self.versions: dict[int, list[str]] = {}  # window start (ms) -> classifier versions of its events
        self.prev_versions: list[str] | None = None  # those of the last emitted window that had any
        self.seen_at: float | None = None  # wall-clock time the worker applied the key's last event (idle-close)
        self.examples: dict[int, dict[str, list[str]]] = {}  # window start (ms) -> category -> example ids

    def is_duplicate(self, partition: int, offset: int) -> bool:
        """Return True when this source offset was already applied (a redelivery after a crash)."""
        return offset <= self.offsets.get(partition, -1)

    def add(
        self,
        cfg: WindowConfig,
        key: str,
        event_time: float,
        category: str,
        probs: Sequence[float] | None = None,
        *,
        source: tuple[int, int] | None = None,
        version: str | None = None,
        event_id: str | None = None,
    ) -> AddResult:
        """Count one classified event; return the windows that closed because of it.

        ``source`` is the (partition, offset) of the event's original input
        message; an offset at or below the highest one already applied for
        that partition is a redelivery and is skipped. ``version`` is the
        classifier's ``model_version`` that labelled it; ``event_id`` may be kept as one of the window's
        examples of its category (``keep_example``).
        """
        if source is not None:
            if self.is_duplicate(*source):
                return AddResult(duplicate=True)
            self.offsets[source[0]] = source[1]
        k = len(cfg.categories)
        size = cfg.size_ms
        t_ms = int(round(event_time * 1000))
        start = (t_ms // size) * size
        if start + size <= self.closed_until_ms:
            self.late += 1
            return AddResult(late=True, window_start=start / 1000, closed_until=self.closed_until_ms / 1000)
        acc = self.open.get(start)
        if acc is None:
            acc = self.open[start] = [0.0] * (1 + 2 * k)
        acc[0] += 1
        if version is not None:
            seen = self.versions.setdefault(start, [])
            if version not in seen and len(seen) < MAX_VERSIONS_PER_WINDOW:  # bounded against hostile input
                seen.append(version)
        ci = cfg.categories.index(category)
        acc[1 + ci] += 1
        if event_id is not None and cfg.examples:
            keep_example(self.examples.setdefault(start, {}).setdefault(category, []), event_id, cfg.examples)
        if probs is None:
            acc[1 + k + ci] += 1.0
        else:
            j = 1 + k
            for p in probs:
                acc[j] += p
                j += 1
        if self.max_event_ms is None or t_ms > self.max_event_ms:
            self.max_event_ms = t_ms
            watermark = t_ms - cfg.lateness_ms
            boundary = (watermark // size) * size
            if boundary > self.closed_until_ms:
                return AddResult(closed=self._close(cfg, key, boundary, "watermark"), window_start=start / 1000)
        return AddResult(window_start=start / 1000)

    def close_all(self, cfg: WindowConfig, key: str, closed_by: str) -> list[WindowStatistic]:
        """Close every open window (end of input, or the key went idle)."""
        if not self.open:
            return []
        end = max(self.open) + cfg.size_ms
        return self._close(cfg, key, max(end, self.closed_until_ms), closed_by)

    def _close(self, cfg: WindowConfig, key: str, until_ms: int, closed_by: str) -> list[WindowStatistic]:
        self.closed_until_ms = until_ms
        out = []
        for start in sorted(s for s in self.open if s + cfg.size_ms <= until_ms):
            out.append(self._statistic(cfg, key, start, self.open.pop(start), closed_by))
        return out

    def _statistic(self, cfg: WindowConfig, key: str, start: int, acc: list[float], closed_by: str) -> WindowStatistic:
        k = len(cfg.categories)
        versions = self.versions.pop(start, [])
        stat = window_statistic(key, start / 1000, (start + cfg.size_ms) / 1000, cfg.categories, acc[1 : 1 + k],
                                acc[1 + k :], closed_by, self.prev, cfg.confusion, versions, self.prev_versions,
                                cfg.min_n, self.examples.pop(start, None))
        self.prev = (start, stat.entropy, stat.entropy_se)
        if versions:
            self.prev_versions = stat.classifier_versions
        return stat

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable snapshot (the value stored in the changelog-backed table)."""
        return {
            "open": {str(s): acc for s, acc in self.open.items()},
            "max_event_ms": self.max_event_ms,
            "closed_until_ms": self.closed_until_ms,
            "prev": list(self.prev) if self.prev else None,
            "offsets": {str(p): o for p, o in self.offsets.items()},
            "late": self.late,
            "partition": self.partition,
            "versions": {str(s): v for s, v in self.versions.items()},
            "prev_versions": self.prev_versions,
            "seen_at": self.seen_at,
            "examples": {str(s): v for s, v in self.examples.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> KeyWindows:
        kw = cls()
        if not d:
            return kw
        kw.open = {int(s): list(acc) for s, acc in d["open"].items()}
        kw.max_event_ms = d["max_event_ms"]
        kw.closed_until_ms = d["closed_until_ms"]
        kw.prev = tuple(d["prev"]) if d["prev"] else None  # type: ignore[assignment]
        kw.offsets = {int(p): o for p, o in d["offsets"].items()}
        kw.late = d["late"]
        kw.partition = d.get("partition")
        kw.versions = {int(s): list(v) for s, v in d.get("versions", {}).items()}  # absent in older snapshots
        kw.prev_versions = d.get("prev_versions")
        kw.seen_at = d.get("seen_at")
        kw.examples = {int(s): {c: list(ids) for c, ids in v.items()} for s, v in d.get("examples", {}).items()}
        return kw


def idle_since(seen_at: float | None, started_at: float, idle: float) -> float:
    """When a key's silence began, for idle-close: the (persisted) time of its last event, so a restart does not
    reset it; but a key already silent for ``idle`` when the worker started counts from the start, since its
    events may still wait in the input topic.

    >>> idle_since(100.0, started_at=130.0, idle=60.0)  # restarted 30 s after the last event: closes at 160
    100.0
    >>> idle_since(100.0, started_at=400.0, idle=60.0), idle_since(None, started_at=400.0, idle=60.0)
    (400.0, 400.0)
    """
    if seen_at is None or started_at - seen_at >= idle:
        return started_at
    return seen_at


class WindowEngine:
    """Windows for many keys held in memory: offline replay and tests use this directly."""

    def __init__(self, cfg: WindowConfig) -> None:
        self.cfg = cfg
        self.keys: dict[str, KeyWindows] = {}

    def key(self, key: str) -> KeyWindows:
        """The windows of ``key``, created empty for a new key."""
        kw = self.keys.get(key)
        if kw is None:
            kw = self.keys[key] = KeyWindows()
        return kw

    def add(
        self, key: str, event_time: float, category: str, probs: Sequence[float] | None = None,
        version: str | None = None, event_id: str | None = None,
    ) -> AddResult:
        return self.key(key).add(self.cfg, key, event_time, category, probs, version=version, event_id=event_id)

    def flush(self) -> list[WindowStatistic]:
        """Close every key's open windows at the end of the input, in key order."""
        out: list[WindowStatistic] = []
        for key in sorted(self.keys):
            out.extend(self.keys[key].close_all(self.cfg, key, "flush"))
        return out

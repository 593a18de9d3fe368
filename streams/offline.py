"""The pipeline without a broker: the same classification, windows and alert rules over an iterable of events.

The stream worker and this function share every piece of logic, so on the
same events (in the same per-key order) they give the same window statistics
and alerts. Tests use it as the expected result of the live pipeline; the
audit replay (``valuedrift.ops.replay``) builds on it. ``run_classified`` does the same for
records that are already classified (no inference), as the live window agent does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from valuedrift.classifier.base import Classifier
from valuedrift.streams.core.alerting import AlertState
from valuedrift.streams.core.records import Alert, ClassifiedResponse, ResponseEvent, WindowStatistic
from valuedrift.streams.core.windowing import WindowEngine
from valuedrift.streams.settings import Settings

DEFAULT_CHUNK_SIZE = 256  # events per classifier call in run_offline (the classifier batches within a call itself)


@dataclass
class OfflineResult:
    windows: list[WindowStatistic]
    alerts: list[Alert]
    late: int


class OfflineCore:
    """Every key's windows and alert state in memory, around the pipeline's per-record core
    (``valuedrift.streams.core.pipeline``): what both offline runs share.

    ``add`` is what the live window agent does per classified record (without the Kafka bookkeeping);
    ``finish`` flushes the open windows and evaluates the alert rules, per key in window order.
    """

    def __init__(self, settings: Settings, codes: tuple[str, ...], confusion: Any = None,
                 categories: tuple | None = None) -> None:
        self.pipeline = settings.pipeline(codes, confusion, categories)
        self.engine = WindowEngine(self.pipeline.cfg)
        self.windows: list[WindowStatistic] = []
        self.late = 0

    def add(self, rec: ClassifiedResponse) -> None:
        """Window one classified record (RecordRefused when its category is not the classifier's)."""
        res = self.pipeline.add(self.engine.key(rec.monitor_key), rec)
        if res.closed:
            self.windows.extend(res.closed)
        if res.late:
            self.late += 1

    def finish(self) -> OfflineResult:
        windows = self.windows + self.engine.flush()
        states: dict[str, AlertState] = {}
        alerts = []
        for w in windows:  # per key, windows are in order; keys are independent
            alerts.extend(self.pipeline.judge(w, states.setdefault(w.monitor_key, AlertState())))
        return OfflineResult(windows=windows, alerts=alerts, late=self.late)


def run_offline(events: Iterable[ResponseEvent], classifier: Classifier, settings: Settings,
                chunk_size: int = DEFAULT_CHUNK_SIZE,
                emit: Callable[[ClassifiedResponse], None] | None = None) -> OfflineResult:
    """Classify events ``chunk_size`` at a time, window them by event time, flush at the end, and evaluate the rules.

    ``emit``, if given, receives each event's ``ClassifiedResponse`` (what the worker sends to the classified
    topic) in the order the events are windowed; ``run_classified`` on those records gives the same result.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 events, got {chunk_size}")
    codes = classifier.taxonomy.codes
    core = OfflineCore(settings, codes, getattr(classifier, "confusion", None), classifier.taxonomy.categories)

    def run(chunk: list[ResponseEvent]) -> None:
        probs = classifier.predict_proba([e.prompt for e in chunk], [e.response for e in chunk])
        for ev, row in zip(chunk, probs, strict=True):
            rec = ClassifiedResponse.labelled(ev, row, codes, classifier.version)
            if emit is not None:
                emit(rec)
            core.add(rec)

    chunk: list[ResponseEvent] = []
    for ev in events:
        chunk.append(ev)
        if len(chunk) >= chunk_size:
            run(chunk)
            chunk = []
    if chunk:
        run(chunk)
    return core.finish()


def run_classified(records: Iterable[ClassifiedResponse], settings: Settings,
                   codes: tuple[str, ...], confusion: Any = None,
                   emit: Callable[[ClassifiedResponse], None] | None = None) -> OfflineResult:
    """Window already-classified records (no inference) as the live window agent does: by their
    ``category``, with their ``probs`` in ``codes`` order. A record whose category is not in ``codes``
    raises RecordRefused, a ValueError (the live agent dead-letters it; check first). ``emit``: as in
    ``run_offline``."""
    core = OfflineCore(settings, codes, confusion)
    for rec in records:
        if emit is not None:
            emit(rec)
        core.add(rec)
    return core.finish()

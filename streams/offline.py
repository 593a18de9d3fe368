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
from valuedrift.streams.core.alerting import AlertState, check_page_on, evaluate
from valuedrift.streams.core.records import Alert, ClassifiedResponse, ResponseEvent, WindowStatistic
from valuedrift.streams.core.windowing import WindowEngine
from valuedrift.streams.settings import Settings


@dataclass
class OfflineResult:
    windows: list[WindowStatistic]
    alerts: list[Alert]
    late: int


class OfflineCore:
    """Windows and alert rules over classified events held in memory: what both offline runs share.

    ``add`` is what the live window agent does per classified record (without the Kafka bookkeeping);
    ``finish`` flushes the open windows and evaluates the alert rules, per key in window order.
    """

    def __init__(self, settings: Settings, codes: tuple[str, ...], confusion: Any = None) -> None:
        self.codes = codes
        self.engine = WindowEngine(settings.window_config(codes, confusion))
        self.policy = settings.alert_policy()
        check_page_on(self.policy, codes)
        self.windows: list[WindowStatistic] = []
        self.late = 0

    def add(self, key: str, event_time: float, category: str, probs: list[float] | None,
            version: str | None = None, event_id: str | None = None) -> None:
        res = self.engine.add(key, event_time, category, probs, version, event_id)
        if res.closed:
            self.windows.extend(res.closed)
        if res.late:
            self.late += 1

    def finish(self) -> OfflineResult:
        windows = self.windows + self.engine.flush()
        states: dict[str, AlertState] = {}
        alerts = []
        for w in windows:  # per key, windows are in order; keys are independent
            alerts.extend(evaluate(w, self.policy, states.setdefault(w.monitor_key, AlertState())))
        return OfflineResult(windows=windows, alerts=alerts, late=self.late)


def run_offline(events: Iterable[ResponseEvent], classifier: Classifier, settings: Settings,
                batch_size: int = 256, emit: Callable[[ClassifiedResponse], None] | None = None) -> OfflineResult:
    """Classify events in batches, window them by event time, flush at the end, and evaluate the rules.

    ``emit``, if given, receives each event's ``ClassifiedResponse`` (what the worker sends to the classified
    topic) in the order the events are windowed; ``run_classified`` on those records gives the same result.
    """
    codes = classifier.taxonomy.codes
    core = OfflineCore(settings, codes, getattr(classifier, "confusion", None))

    def run(batch: list[ResponseEvent]) -> None:
        probs = classifier.predict_proba([e.prompt for e in batch], [e.response for e in batch])
        for ev, row in zip(batch, probs, strict=True):
            if emit is not None:
                emit(ClassifiedResponse.labelled(ev, row, codes, classifier.version))
            core.add(ev.monitor_key, ev.event_time, codes[int(row.argmax())], [float(x) for x in row],
                     classifier.version, ev.id)

    batch: list[ResponseEvent] = []
    for ev in events:
        batch.append(ev)
        if len(batch) >= batch_size:
            run(batch)
            batch = []
    if batch:
        run(batch)
    return core.finish()


def run_classified(records: Iterable[ClassifiedResponse], settings: Settings,
                   codes: tuple[str, ...], confusion: Any = None,
                   emit: Callable[[ClassifiedResponse], None] | None = None) -> OfflineResult:
    """Window already-classified records (no inference) as the live window agent does: by their
    ``category``, with their ``probs`` in ``codes`` order. A record whose category is not in ``codes``
    raises ValueError (the live agent dead-letters it; check first). ``emit``: as in ``run_offline``."""
    core = OfflineCore(settings, codes, confusion)
    for rec in records:
        if emit is not None:
            emit(rec)
        p = rec.probs
        core.add(rec.monitor_key, rec.event_time, rec.category, [p.get(c, 0.0) for c in codes], rec.model_version,
                 rec.id)
    return core.finish()

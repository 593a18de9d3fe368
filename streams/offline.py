"""The pipeline without a broker: the same classification, windows and alert rules over an iterable of events.

The stream worker and this function share every piece of logic, so on the
same events (in the same per-key order) they give the same window statistics
and alerts. Tests use it as the expected result of the live pipeline; the
audit replay builds on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from classifier.base import Classifier
from streams.alerting import AlertState, evaluate
from streams.records import Alert, ResponseEvent, WindowStatistic
from streams.settings import Settings
from streams.windowing import WindowEngine


@dataclass
class OfflineResult:
    windows: list[WindowStatistic]
    alerts: list[Alert]
    late: int


def run_offline(events: Iterable[ResponseEvent], classifier: Classifier, settings: Settings,
                batch_size: int = 256) -> OfflineResult:
    """Classify events in batches, window them by event time, flush at the end, and evaluate the rules."""
    codes = classifier.taxonomy.codes
    engine = WindowEngine(settings.window_config(codes))
    policy = settings.alert_policy()
    windows: list[WindowStatistic] = []
    late = 0

    def run(batch: list[ResponseEvent]) -> None:
        nonlocal late
        probs = classifier.predict_proba([e.prompt for e in batch], [e.response for e in batch])
        for ev, row in zip(batch, probs, strict=True):
            res = engine.add(ev.monitor_key, ev.event_time, codes[int(row.argmax())], [float(p) for p in row])
            windows.extend(res.closed)
            late += res.late

    batch: list[ResponseEvent] = []
    for ev in events:
        batch.append(ev)
        if len(batch) >= batch_size:
            run(batch)
            batch = []
    if batch:
        run(batch)
    windows.extend(engine.flush())
    states: dict[str, AlertState] = {}
    alerts = []
    for w in windows:  # per key, windows are in order; keys are independent
        alerts.extend(evaluate(w, policy, states.setdefault(w.monitor_key, AlertState())))
    return OfflineResult(windows=windows, alerts=alerts, late=late)

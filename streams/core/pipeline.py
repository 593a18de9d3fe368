"""The per-record core of the pipeline: what the live worker and the offline runs both do with a classified record
and with a closed window, so that "live = offline" holds by construction.

The worker (``valuedrift.streams.worker.app``) wraps these calls in Kafka bookkeeping (dead letters, the changelog
table, offsets); the offline runs (``valuedrift.streams.offline``) keep every key's state in memory. Neither checks
categories, maps probabilities or calls the rules itself.

>>> from valuedrift.streams.core.alerting import AlertPolicy, AlertState
>>> from valuedrift.streams.core.records import ClassifiedResponse
>>> from valuedrift.streams.core.windowing import KeyWindows, WindowConfig
>>> core = Pipeline(WindowConfig(size=60, lateness=0, categories=("g1", "g2")), AlertPolicy(min_n=1))
>>> kw, state = KeyWindows(), AlertState()
>>> def rec(i, t, code):
...     return ClassifiedResponse(id=f"r{i}", monitor_key="k", event_time=t, category=code,
...                               probs={code: 1.0}, model_version="m-1")
>>> core.add(kw, rec(1, 1767225600, "g1")).closed
[]
>>> [w.counts for w in core.add(kw, rec(2, 1767225660, "g2")).closed]  # the next window closes the first
[{'g1': 1, 'g2': 0}]
>>> core.add(kw, rec(3, 1767225661, "g9"))
Traceback (most recent call last):
...
valuedrift.streams.core.pipeline.RecordRefused: category 'g9' is not in taxonomy ['g1', 'g2']
"""

from __future__ import annotations

from valuedrift.streams.core.alerting import AlertPolicy, AlertState, check_page_on, evaluate
from valuedrift.streams.core.records import Alert, ClassifiedResponse, WindowStatistic
from valuedrift.streams.core.windowing import AddResult, KeyWindows, WindowConfig


class RecordRefused(ValueError):
    """A classified record whose category the windows do not count; the worker dead-letters it with ``reason``."""

    def __init__(self, category: str, categories: tuple[str, ...]) -> None:
        self.category, self.categories = category, categories
        super().__init__(self.reason())

    def reason(self, where: str = "") -> str:
        """The message, with ``where`` (e.g. " (line 2 of 3)") after the category."""
        return f"category {self.category!r}{where} is not in taxonomy {list(self.categories)}"


class Pipeline:
    """Windows and alert rules for classified records: one window configuration, one alert policy.

    ``policy.page_on`` must name categories of the configuration (ValueError otherwise).
    """

    def __init__(self, cfg: WindowConfig, policy: AlertPolicy) -> None:
        check_page_on(policy, cfg.categories)
        self.cfg = cfg
        self.policy = policy

    @property
    def categories(self) -> tuple[str, ...]:
        return self.cfg.categories

    def check(self, rec: ClassifiedResponse) -> None:
        """Raise RecordRefused when the record's category is not one of the configuration's."""
        if rec.category not in self.cfg.categories:
            raise RecordRefused(rec.category, self.cfg.categories)

    def add(self, windows: KeyWindows, rec: ClassifiedResponse,
            source: tuple[int, int] | None = None) -> AddResult:
        """Add a record to its key's windows (``windows``, updated); return what closed and whether it was late
        or a duplicate of ``source`` (partition, position), which the worker uses to skip redelivered input.

        Raises RecordRefused when the record's category is not one of the configuration's.
        """
        self.check(rec)
        probs = [rec.probs.get(c, 0.0) for c in self.cfg.categories]
        return windows.add(self.cfg, rec.monitor_key, rec.event_time, rec.category, probs, source=source,
                           version=rec.model_version, event_id=rec.id)

    def judge(self, window: WindowStatistic, state: AlertState) -> list[Alert]:
        """The alerts a closed window raises under the policy; ``state`` (the key's) is updated."""
        return evaluate(window, self.policy, state)

"""The demo scenario: one stable model and one whose behaviour drifts after a jailbreak wave.

Pure and seeded: the same seed gives the same events, so the demo's numbers repeat.

>>> evs = list(demo_events(windows=3, per_window=10, seed=1))
>>> len(evs), sorted({e.monitor_key for e in evs})
(60, ['model-drifting', 'model-stable'])
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from valuedrift.classifier.corpus import by_label, demo_corpus
from valuedrift.classifier.datasets import Example
from valuedrift.streams.core.records import ResponseEvent
from valuedrift.streams.core.taxonomy import CATEGORY_CODES

START = 1767225600.0  # 2026-01-01T00:00:00Z
STABLE = (0.70, 0.02, 0.20, 0.05, 0.03)
DRIFTED = (0.30, 0.30, 0.10, 0.15, 0.15)


def drifting_probs(window: int, windows: int, onset: int | None = None) -> tuple[float, ...]:
    """Category probabilities of the drifting model in a window: stable until the onset, then a jump
    halfway to the drifted mix, then a steady slide the rest of the way."""
    onset = windows // 2 if onset is None else onset
    if window < onset:
        return STABLE
    span = max(windows - 1 - onset, 1)
    a = 0.5 + 0.5 * (window - onset) / span
    return tuple((1 - a) * s + a * d for s, d in zip(STABLE, DRIFTED, strict=False))


def demo_events(
    windows: int = 12,
    per_window: int = 100,
    window_seconds: float = 60.0,
    seed: int = 7,
    corpus: Sequence[Example] | None = None,
) -> Iterator[ResponseEvent]:
    """Yield response events for both models, in event-time order within each window."""
    rng = random.Random(seed)
    pools = by_label(list(corpus if corpus is not None else demo_corpus()))
    missing = [c for c in CATEGORY_CODES if not pools.get(c)]
    if missing:
        raise ValueError(f"the corpus has no examples for {missing}")
    keys = {"model-stable": lambda w: STABLE, "model-drifting": lambda w: drifting_probs(w, windows)}
    for w in range(windows):
        batch = []
        for key, probs in keys.items():
            p = probs(w)
            for i in range(per_window):
                code = rng.choices(CATEGORY_CODES, weights=p)[0]
                ex = rng.choice(pools[code])
                t = START + w * window_seconds + (i + rng.random()) * window_seconds / per_window
                batch.append(ResponseEvent(
                    id=f"{key}-{w:03d}-{i:03d}", monitor_key=key, event_time=round(t, 3),
                    prompt=ex.prompt, response=ex.response, metadata={"corpus_id": ex.id, "true_label": code},
                ))
        batch.sort(key=lambda e: e.event_time)
        yield from batch

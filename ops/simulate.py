"""``valuedrift simulate``: seeded events with ground truth, to a JSONL file or a Kafka topic.

Each scenario becomes one monitored key (``sim-<scenario>``); each step is one window of ``window_seconds``
of event time with k responses. Response events carry real texts of the sampled category from a labelled
corpus (the demo corpus by default), so the classifier is exercised too; ``--classified`` emits classified
records with the true category instead (skipping the classifier).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from valuedrift.classifier.corpus import by_label
from valuedrift.classifier.datasets import Example
from valuedrift.streams.core.records import ClassifiedResponse, Record, ResponseEvent
from valuedrift.streams.core.simulation import START, scenario_probs
from valuedrift.streams.core.taxonomy import CATEGORY_CODES


def simulated_events(scenarios: Sequence[str], steps: int, k: int, seed: int, corpus: Sequence[Example],
                     window_seconds: float = 60.0, sigma: float = 0.0125, jump: float = 0.1,
                     classified: bool = False) -> Iterator[Record]:
    """Yield events step by step (event-time order within a step), keys interleaved."""
    rng = np.random.default_rng(seed)
    pools = by_label(list(corpus))
    missing = [c for c in CATEGORY_CODES if not pools.get(c)]
    if missing and not classified:
        raise ValueError(f"the corpus has no examples labelled {missing}; every category needs texts")
    trajectories = {f"sim-{s}": scenario_probs(s, steps, sigma=sigma, jump=jump) for s in scenarios}
    for t in range(steps):
        batch: list[tuple[float, Record]] = []
        for key, probs in trajectories.items():
            p = probs[t] / probs[t].sum()
            cats = rng.choice(len(CATEGORY_CODES), size=k, p=p)
            times = START + t * window_seconds + np.sort(rng.random(k)) * window_seconds
            for i, (c, et) in enumerate(zip(cats, times, strict=True)):
                code = CATEGORY_CODES[int(c)]
                ev_id = f"{key}-{t:05d}-{i:04d}"
                if classified:
                    rec: Record = ClassifiedResponse(
                        id=ev_id, monitor_key=key, event_time=round(float(et), 3), category=code,
                        probs={x: float(x == code) for x in CATEGORY_CODES}, model_version="simulated-truth")
                else:
                    ex = pools[code][int(rng.integers(len(pools[code])))]
                    rec = ResponseEvent(id=ev_id, monitor_key=key, event_time=round(float(et), 3), prompt=ex.prompt,
                                        response=ex.response, metadata={"true_label": code, "step": t})
                batch.append((float(et), rec))
        batch.sort(key=lambda x: x[0])
        yield from (r for _, r in batch)

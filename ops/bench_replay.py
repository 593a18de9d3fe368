"""``valuedrift bench replay``: events/s through the replay core (windows + estimators + detectors).

Input: N seeded, already-classified records held in memory (several keys, drifting category
mixes). Measured in the same process, one thread, best of ``repeat`` runs:

- ``json_loads_eps``: ``json.loads`` of every serialised record (the floor of any JSON input);
- ``parse_only_eps``: ``ClassifiedResponse.parse_bytes`` (pydantic) of every record: the baseline;
- ``core_eps``: ``valuedrift.streams.offline.run_classified`` over the parsed records: event-time windows,
  entropy estimates, ΔS, and the alert rules (River detectors included) on every closed window;
- ``ratio``: ``core_eps / parse_only_eps``; ``end_to_end_eps``: parse and core one after the other.
"""

from __future__ import annotations

import gc
import json
import random
import time
from typing import Any

from valuedrift.streams.core.records import ClassifiedResponse
from valuedrift.streams.core.taxonomy import CATEGORY_CODES
from valuedrift.streams.offline import run_classified
from valuedrift.streams.settings import Settings

T0 = 1767225600.0


def make_records(n: int, keys: int = 8, seed: int = 0, window: float = 60.0,
                 per_window: int = 100) -> list[ClassifiedResponse]:
    """N classified records over ``keys`` keys, ``per_window`` per key per window, in event-time order;
    the mix of each odd-numbered key drifts towards g2 over time."""
    rng = random.Random(seed)
    per_key = max(1, n // keys)
    out = []
    step = window / per_window
    for j in range(per_key):
        for k in range(keys):
            if len(out) >= n:
                break
            drift = (j / per_key) * (0.3 if k % 2 else 0.0)
            weights = [0.6 - drift, 0.1 + drift, 0.15, 0.1, 0.05]
            cat = rng.choices(CATEGORY_CODES, weights)[0]
            probs = {c: (0.8 if c == cat else 0.05) for c in CATEGORY_CODES}
            out.append(ClassifiedResponse(
                id=f"b{k}-{j}", monitor_key=f"bench-{k}", event_time=T0 + j * step + rng.random() * step * 0.5,
                category=cat, probs=probs, model_version="bench"))
    return out


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_bench(n: int = 200_000, keys: int = 8, seed: int = 0, repeat: int = 3, window: float = 60.0,
              per_window: int = 100) -> dict[str, Any]:
    records = make_records(n, keys, seed, window, per_window)
    lines = [r.model_dump_json().encode() for r in records]
    settings = Settings(window_seconds=window)
    codes = CATEGORY_CODES
    out: dict[str, Any] = {}

    def loads() -> None:
        for line in lines:
            json.loads(line)

    def parse() -> None:
        for line in lines:
            ClassifiedResponse.parse_bytes(line)

    def core() -> None:
        out["result"] = run_classified(records, settings, codes)

    run_classified(records[: 20 * per_window], settings, codes)  # warm-up: imports River once, outside the timing
    t_loads = _best(loads, repeat)
    t_parse = _best(parse, repeat)
    t_core = _best(core, repeat)
    res = out["result"]
    return {
        "events": len(records),
        "keys": keys,
        "per_window": per_window,
        "windows": len(res.windows),
        "alerts": len(res.alerts),
        "repeat": repeat,
        "json_loads_eps": round(len(records) / t_loads),
        "parse_only_eps": round(len(records) / t_parse),
        "core_eps": round(len(records) / t_core),
        "ratio": round(t_parse / t_core, 3),
        "end_to_end_eps": round(len(records) / (t_parse + t_core)),
        "rules": settings.alert_rules,
    }

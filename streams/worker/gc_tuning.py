"""Garbage-collector settings for long-running, allocation-heavy processes (the worker, and the benchmarks
that compare against it, so both run under the same collector)."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Make the cyclic garbage collector cheaper for a long-running worker.

    Every response allocates many short-lived objects (records, Kafka messages); with the default
    thresholds the collector runs every 700 allocations and its full passes walk the whole start-up heap
    (Faust, pydantic, ONNX Runtime bindings). Freezing the start-up heap and collecting the youngest
    generation every 20,000 allocations measured null-pipeline medians of 14,200 against 8,800 events/s
    (`valuedrift bench stream`, five runs each); memory stays flat in the soak run.

    The benchmarks and the soak call it too before timing the classifier in their own process, whose
    heap (thousands of test events) would otherwise slow the collector's passes there and only there.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)

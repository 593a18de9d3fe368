"""How the labels trade as one category's logit is raised: the table behind ``classifier export --class-bias``.

Adding b to a category's logit is adding b to its log-probability (the softmax's normaliser is common to all
categories of a row), so the sweep needs only the probabilities a classifier already gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from valuedrift.classifier.metrics import classification_report


def bias_sweep(probs: np.ndarray, y_true: Sequence[str], codes: Sequence[str], code: str,
               biases: Sequence[float]) -> list[dict[str, Any]]:
    """For each bias b added to ``code``'s logit: its recall and precision, and accuracy and macro-F1.

    >>> p = np.array([[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    >>> [(r["bias"], r["recall"]) for r in bias_sweep(p, ["b", "b", "b"], ["a", "b"], "b", [0.0, 0.5, 1.0])]
    [(0.0, 0.333), (0.5, 0.667), (1.0, 1.0)]
    """
    k = list(codes).index(code)
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))
    rows = []
    for b in biases:
        shifted = logp.copy()
        shifted[:, k] += b
        report = classification_report(y_true, [codes[i] for i in shifted.argmax(axis=1)], codes)
        mine = report["per_class"][code]
        rows.append({"bias": round(float(b), 4), "recall": round(mine["recall"], 3),
                     "precision": round(mine["precision"], 3), "accuracy": round(report["accuracy"], 3),
                     "macro_f1": round(report["macro_f1"], 3)})
    return rows


def smallest_bias_for(rows: Sequence[dict[str, Any]], recall: float) -> dict[str, Any] | None:
    """The first row (smallest bias of a rising sweep) whose recall reaches ``recall``; None if none does.

    >>> smallest_bias_for([{"bias": 0.0, "recall": 0.7}, {"bias": 0.5, "recall": 0.82}], 0.8)["bias"]
    0.5
    """
    return next((r for r in rows if r["recall"] >= recall), None)

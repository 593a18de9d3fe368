"""Classification metrics in plain numpy: accuracy, per-class P/R/F1, confusion, Cohen's κ, Spearman ρ,
and how well the probabilities are calibrated.

>>> m = classification_report(["g1", "g1", "g2", "g3"], ["g1", "g2", "g2", "g3"], ["g1", "g2", "g3"])
>>> m["accuracy"], m["confusion"]
(0.75, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
>>> round(cohen_kappa(["a", "a", "b", "b"], ["a", "a", "b", "a"], ["a", "b"]), 3)
0.5
>>> round(spearman([1, 2, 3, 4], [10, 20, 40, 30]), 3)
0.8
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Rows are the true label, columns the prediction, both in ``labels`` order."""
    index = {c: i for i, c in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        m[index[t], index[p]] += 1
    return m


def cohen_kappa(a: Sequence[str], b: Sequence[str], labels: Sequence[str]) -> float:
    """Cohen's κ between two labellings of the same items."""
    m = confusion_matrix(a, b, labels).astype(float)
    n = m.sum()
    if n == 0:
        return float("nan")
    po = np.trace(m) / n
    pe = float((m.sum(0) * m.sum(1)).sum()) / (n * n)
    return 1.0 if pe == 1 else float((po - pe) / (1 - pe))


def _ranks(x: Sequence[float]) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    order = x.argsort(kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for v in np.unique(x):  # average ranks for ties
        tie = x == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    if len(x) < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def classification_report(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Return n, accuracy, macro_f1, per_class {code: precision, recall, f1, support}, confusion, cohen_kappa."""
    m = confusion_matrix(y_true, y_pred, labels)
    n = int(m.sum())
    per_class = {}
    f1s = []
    for i, c in enumerate(labels):
        tp = m[i, i]
        support = int(m[i].sum())
        predicted = int(m[:, i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": support}
        if support:
            f1s.append(f1)
    return {
        "n": n,
        "accuracy": float(np.trace(m) / n) if n else float("nan"),
        "macro_f1": float(np.mean(f1s)) if f1s else float("nan"),
        "per_class": per_class,
        "confusion": m.tolist(),
        "cohen_kappa": cohen_kappa(y_true, y_pred, labels),
    }


def calibration(probs: np.ndarray, y_true: Sequence[str], labels: Sequence[str], bins: int = 15) -> dict[str, Any]:
    """How far the probabilities are from frequencies: expected calibration error of the top label (``bins``
    equal-width confidence bins), mean negative log-likelihood of the true label (nats) and Brier score.

    >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    >>> c = calibration(p, ["a", "b", "a", "b"], ["a", "b"])
    >>> round(c["ece"], 3), round(c["nll"], 3), round(c["brier"], 3)
    (0.35, 0.785, 0.51)
    """
    p = np.asarray(probs, dtype=float)
    if len(p) == 0:
        return {"ece": None, "nll": None, "brier": None, "bins": bins}
    index = {c: i for i, c in enumerate(labels)}
    y = np.array([index[t] for t in y_true])
    conf, hit = p.max(axis=1), p.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)  # bin b holds confidences in [b/bins, (b+1)/bins)
    ece = sum(abs(hit[which == b].mean() - conf[which == b].mean()) * np.mean(which == b)
              for b in range(bins) if np.any(which == b))
    onehot = np.eye(len(labels))[y]
    return {"ece": float(ece), "nll": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()),
            "brier": float(((p - onehot) ** 2).sum(axis=1).mean()), "bins": bins}

"""Evaluate a classifier on labelled examples: the report of ``valuedrift classifier evaluate``."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from valuedrift.classifier.base import Classifier
from valuedrift.classifier.datasets import Example
from valuedrift.classifier.intervals import LEVEL, RESAMPLES, SEED, score_intervals, statistic_interval
from valuedrift.classifier.metrics import calibration, classification_report, spearman
from valuedrift.streams.core.entropy import plugin_entropy
from valuedrift.streams.core.taxonomy import DEFAULT_TAXONOMY, FIVE_TO_THREE


def group_entropies(examples: Sequence[Example], predictions: Sequence[Sequence[str]], codes: Sequence[str]
                    ) -> list[tuple[float, ...]]:
    """Per (model × group) group of at least 5 pairs: the entropy of its human labels, then of each prediction
    list's labels."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        if e.model and e.group:
            groups[(e.model, e.group)].append(i)
    return [(plugin_entropy([sum(examples[i].label == c for i in idx) for c in codes]),
             *(plugin_entropy([sum(pred[i] == c for i in idx) for c in codes]) for pred in predictions))
            for idx in groups.values() if len(idx) >= 5]


def rank_correlation(rows: Sequence[tuple[float, ...]], column: int = 1) -> float:
    """Spearman ρ between the human entropies (column 0) and one prediction's (NaN under 3 groups)."""
    return spearman([r[0] for r in rows], [r[column] for r in rows]) if len(rows) >= 3 else math.nan


def entropy_agreement(examples: Sequence[Example], predicted: Sequence[str], codes: Sequence[str]
                      ) -> dict[str, Any]:
    """Spearman ρ between the entropy of human labels and of predicted labels per (model × group) group."""
    rows = group_entropies(examples, [predicted], codes)
    return {"groups": len(rows), "spearman": rank_correlation(rows),
            "spearman_interval": statistic_interval(rows, rank_correlation) if len(rows) >= 3 else [math.nan] * 2}


def clusters_of(examples: Sequence[Example]) -> list[str]:
    """What the bootstrap resamples: the split key where the file has one, else the prompt."""
    return [e.split_key or e.prompt for e in examples]


def indices_by_source(examples: Sequence[Example]) -> dict[str, list[int]]:
    """The positions of each source's examples, sources in name order ('unknown' where none is given)."""
    out: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        out[e.source or "unknown"].append(i)
    return dict(sorted(out.items()))


def label_rates(truth: Sequence[str], guess: Sequence[str], codes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per code: ``recall`` (where it is the label), ``false_positive_rate`` (share of the other examples given it)
    and ``predicted_share`` (share of all examples given it).

    >>> r = label_rates(["g1", "g1", "g2", "g3"], ["g1", "g2", "g2", "g2"], ["g1", "g2", "g3"])
    >>> r["recall"]["g2"], r["false_positive_rate"]["g2"], r["predicted_share"]["g2"]
    (1.0, 0.6667, 0.75)
    """
    n = len(truth)
    out: dict[str, dict[str, float]] = {"recall": {}, "false_positive_rate": {}, "predicted_share": {}}
    for c in codes:
        pos = [g for t, g in zip(truth, guess, strict=True) if t == c]
        neg = [g for t, g in zip(truth, guess, strict=True) if t != c]
        if pos:
            out["recall"][c] = round(sum(g == c for g in pos) / len(pos), 4)
        if neg:
            out["false_positive_rate"][c] = round(sum(g == c for g in neg) / len(neg), 4)
        if n:
            out["predicted_share"][c] = round(sum(g == c for g in guess) / n, 4)
    return out


def by_source(examples: Sequence[Example], predicted: Sequence[str], codes: Sequence[str]) -> dict[str, Any]:
    """Scores of each source apart: accuracy (with its interval), macro-F1, κ and the per-code rates."""
    out = {}
    for src, idx in indices_by_source(examples).items():
        truth, guess = [examples[i].label for i in idx], [predicted[i] for i in idx]
        rep = classification_report(truth, guess, codes)
        interval = score_intervals(truth, guess, clusters_of([examples[i] for i in idx]), codes)["accuracy"]
        out[src] = {"n": rep["n"], "accuracy": rep["accuracy"], "accuracy_interval": interval,
                    "macro_f1": rep["macro_f1"],
                    "cohen_kappa": rep["cohen_kappa"],  # beside the human annotators' κ on that source
                    **label_rates(truth, guess, codes)}
    return out


def evaluate(clf: Classifier, examples: Sequence[Example]) -> tuple[dict[str, Any], np.ndarray]:
    """Return the report (the exact ``--json`` keys plus per-source scores and entropy agreement) and probs."""
    codes = clf.taxonomy.codes
    unknown = sorted({e.label for e in examples} - set(codes))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the classifier's taxonomy {list(codes)}")
    rechecked = getattr(clf, "rechecked", None)  # int8 near ties the ONNX classifier recomputes in fp32
    probs = clf.predict_proba([e.prompt for e in examples], [e.response for e in examples])
    predicted = [codes[int(i)] for i in np.asarray(probs).argmax(axis=1)]
    report = classification_report([e.label for e in examples], predicted, codes)
    if tuple(codes) == DEFAULT_TAXONOMY.codes:  # the method also reports accuracy with 3 classes
        three = [FIVE_TO_THREE[t] == FIVE_TO_THREE[p] for t, p in zip((e.label for e in examples), predicted,
                                                                        strict=True)]
        report["accuracy_3class"] = float(np.mean(three)) if three else math.nan
    clusters = clusters_of(examples)
    report["intervals"] = {"method": f"percentile bootstrap over prompts ({RESAMPLES} resamples, seed {SEED})",
                           "level": LEVEL, "prompts": len(set(clusters)),
                           **score_intervals([e.label for e in examples], predicted, clusters, codes)}
    report["by_source"] = by_source(examples, predicted, codes)
    report["entropy_agreement"] = entropy_agreement(examples, predicted, codes)
    # the probabilities as probabilities (the served ones, class bias included): the labels are what windows count
    report["calibration"] = calibration(np.asarray(probs), [e.label for e in examples], codes)
    report["model_version"] = clf.version
    if rechecked is not None and getattr(clf, "recheck_margin", 0) > 0:  # what the worker's metric is compared to
        report["int8_rechecked_share"] = (clf.rechecked - rechecked) / len(examples) if examples else 0.0
    return report, np.asarray(probs)

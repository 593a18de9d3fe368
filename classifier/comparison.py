"""Compare two classifiers on the same labelled pairs: each score's difference with a paired interval.

Both classifiers' scores are computed on the same bootstrap resamples of prompts, so the interval of a
difference carries only the variation of the pairs on which they disagree: it is much narrower than the
two separate intervals suggest, and it is what says whether a retrained model is really better.

>>> from valuedrift.classifier.datasets import Example
>>> ex = [Example(str(i), f"prompt {i}", "r", "g1" if i % 2 else "g2") for i in range(200)]
>>> truth = [e.label for e in ex]
>>> worse = ["g1"] * 200  # right on every g1, wrong on every g2
>>> rep = compare_predictions(ex, truth, worse, ["g1", "g2"])
>>> rep["accuracy"]["difference"], rep["accuracy"]["verdict"], rep["disagreements"]
(0.5, 'a better', {'pairs': 100, 'only_a_right': 100, 'only_b_right': 0})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from valuedrift.classifier.datasets import Example
from valuedrift.classifier.evaluation import clusters_of, group_entropies, indices_by_source, rank_correlation
from valuedrift.classifier.intervals import (
    LEVEL,
    RESAMPLES,
    SEED,
    paired_confusions,
    percentile_interval,
    scores_of,
    statistic_interval,
)
from valuedrift.classifier.metrics import classification_report


def verdict(interval: Sequence[float]) -> str:
    """'a better' or 'b better' when the interval of a − b excludes 0, else 'no detectable difference'."""
    lo, hi = interval
    if lo > 0:
        return "a better"
    if hi < 0:
        return "b better"
    return "no detectable difference"


def _entry(point_a: float, point_b: float, differences: np.ndarray, level: float) -> dict[str, Any]:
    interval = percentile_interval(differences, level)
    return {"a": point_a, "b": point_b, "difference": point_a - point_b, "interval": interval,
            "verdict": verdict(interval)}  # a NaN interval compares false both ways: no detectable difference


def compare_predictions(examples: Sequence[Example], pred_a: Sequence[str], pred_b: Sequence[str],
                        codes: Sequence[str], resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED
                        ) -> dict[str, Any]:
    """Scores of A and B, and A − B with paired bootstrap intervals over prompts, overall, per class (recall),
    per source (accuracy) and for entropy ρ (paired over its groups)."""
    truth = [e.label for e in examples]
    clusters = clusters_of(examples)

    def paired(idx: Sequence[int]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Resampled scores of A and B on the pairs ``idx`` (same resamples), then their reports."""
        t, a, b = [truth[i] for i in idx], [pred_a[i] for i in idx], [pred_b[i] for i in idx]
        sa, sb = paired_confusions(t, [a, b], [clusters[i] for i in idx], codes, resamples, seed)
        return scores_of(sa), scores_of(sb), classification_report(t, a, codes), classification_report(t, b, codes)

    ra, rb, pa, pb = paired(range(len(examples)))
    report: dict[str, Any] = {
        "n": len(examples), "prompts": len(set(clusters)), "level": level,
        "method": f"paired percentile bootstrap over prompts ({resamples} resamples, seed {seed})",
        **{key: _entry(pa[key], pb[key], ra[key] - rb[key], level) for key in ("accuracy", "macro_f1", "cohen_kappa")},
        "recall": {c: _entry(pa["per_class"][c]["recall"], pb["per_class"][c]["recall"],
                             ra["recall"][:, i] - rb["recall"][:, i], level)
                   for i, c in enumerate(codes) if pa["per_class"][c]["support"]},
    }
    report["by_source"] = {}
    for src, idx in indices_by_source(examples).items():
        sa, sb, qa, qb = paired(idx)
        report["by_source"][src] = {"n": len(idx), **_entry(qa["accuracy"], qb["accuracy"],
                                                            sa["accuracy"] - sb["accuracy"], level)}
    rows = group_entropies(examples, [pred_a, pred_b], codes)
    if len(rows) >= 3:
        def rho_difference(sample: list[tuple[float, ...]]) -> float:
            return rank_correlation(sample, 1) - rank_correlation(sample, 2)

        interval = statistic_interval(rows, rho_difference, resamples, level, seed)
        report["entropy_agreement"] = {"groups": len(rows), "a": rank_correlation(rows, 1),
                                       "b": rank_correlation(rows, 2), "difference": rho_difference(rows),
                                       "interval": interval, "verdict": verdict(interval)}
    right_a = np.array([p == t for p, t in zip(pred_a, truth, strict=True)], dtype=bool)
    right_b = np.array([p == t for p, t in zip(pred_b, truth, strict=True)], dtype=bool)
    report["disagreements"] = {"pairs": sum(a != b for a, b in zip(pred_a, pred_b, strict=True)),
                               "only_a_right": int((right_a & ~right_b).sum()),
                               "only_b_right": int((right_b & ~right_a).sum())}
    return report

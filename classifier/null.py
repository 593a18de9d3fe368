"""A classifier that costs nothing: for measuring the pipeline's own overhead (``bench stream``).

It labels by a hash of the response, so windows still see several categories.

>>> NullClassifier().predict_proba(["p", "q"], ["a", "b"]).sum(axis=1).tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from valuedrift.streams.core.taxonomy import DEFAULT_TAXONOMY, Taxonomy


class NullClassifier:
    version = "null-1"

    def __init__(self, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> None:
        self.taxonomy = taxonomy

    def predict_proba(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(responses), self.taxonomy.size))
        for i, r in enumerate(responses):
            out[i, zlib.crc32(r.encode("utf-8", "surrogatepass")) % self.taxonomy.size] = 1.0
        return out

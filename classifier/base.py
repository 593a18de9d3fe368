"""The classifier protocol: a batch of (prompt, response) pairs in, category probabilities out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from valuedrift.streams.core.taxonomy import DEFAULT_TAXONOMY, Taxonomy

# Precisions an exported (ONNX) classifier can be served in; auto is fp16 on CUDA and int8 on CPU.
PRECISION_CHOICES = ("auto", "int8", "fp16", "fp32")


@runtime_checkable
class Classifier(Protocol):
    """Anything that maps (prompt, response) pairs to probabilities over a taxonomy's categories."""

    taxonomy: Taxonomy
    version: str

    def predict_proba(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(prompts), taxonomy.size); each row sums to 1."""
        ...


def argmax_codes(probs: np.ndarray, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[str]:
    """Return the most probable category code of each row."""
    codes = taxonomy.codes
    return [codes[i] for i in np.asarray(probs).argmax(axis=1)]

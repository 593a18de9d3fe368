"""Seeded train/validation/test splits by group, so the same prompt never sits on both sides.

>>> from valuedrift.classifier.datasets import Example
>>> ex = [Example(str(i), "p", "r", "g1", split_key=f"k{i // 3}") for i in range(30)]
>>> tr, va, te = split_by_key(ex, seed=0, fractions=(0.6, 0.2, 0.2))
>>> len(tr) + len(va) + len(te), {e.split_key for e in tr} & {e.split_key for e in te}
(30, set())
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from valuedrift.classifier.datasets import Example

FRACTIONS = (0.7, 0.15, 0.15)  # train, validation, test

def _unit(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def assign(key: str, seed: int, fractions: tuple[float, float, float]) -> str:
    """Return 'train', 'val' or 'test' for a split key: a stable hash, independent of the other keys."""
    u = _unit(key, seed)
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def split_by_key(examples: Sequence[Example], seed: int = 13, fractions: tuple[float, float, float] = FRACTIONS
                 ) -> tuple[list[Example], list[Example], list[Example]]:
    """Split examples by ``split_key`` (falling back to the id)."""
    parts: dict[str, list[Example]] = {"train": [], "val": [], "test": []}
    for e in examples:
        parts[assign(e.split_key or e.id, seed, fractions)].append(e)
    return parts["train"], parts["val"], parts["test"]

"""Seeds and per-row random streams (pure Python; the torch version in ``valuedrift.sampler.hf_sampling`` matches it).

Every sampled row has a 64-bit *row key* derived from the request's seed and the sample index only,
and draws the uniform of decoding step t from a counter-based hash (SplitMix64 finaliser) of (row key, t)
(``uniform(key, t, 0)``; the index argument gives more numbers per step when needed). The random numbers of
a row therefore do not depend on which other rows share its micro-batch, its position there, the batch size
or the device: packing cannot change them.

>>> row_key(42, 0) == row_key(42, 0), row_key(42, 0) == row_key(42, 1)
(True, False)
>>> 0.0 < uniform(row_key(42, 0), step=3, index=17) < 1.0
True
>>> derive_seed(7, "prompt-3", 2) == derive_seed(7, "prompt-3", 2) != derive_seed(7, "prompt-3", 3)
True
"""

from __future__ import annotations

import hashlib
import secrets

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
SEED_LIMIT = 2**31  # seeds fit a signed 32-bit int: every OpenAI-compatible server accepts them


def mix64(z: int) -> int:
    """SplitMix64 step: add the golden gamma, then the finaliser (unsigned 64-bit arithmetic)."""
    z = (z + GOLDEN) & M64
    z = ((z ^ (z >> 30)) * MIX1) & M64
    z = ((z ^ (z >> 27)) * MIX2) & M64
    return z ^ (z >> 31)


def row_key(seed: int, sample: int) -> int:
    """The 64-bit key of sample ``sample`` of a request seeded with ``seed``."""
    digest = hashlib.sha256(f"valuedrift-row/{seed}/{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def step_key(key: int, step: int) -> int:
    """The key of one decoding step of a row."""
    return mix64(key ^ mix64(step))


def uniform(key: int, step: int, index: int) -> float:
    """The row's uniform in (0, 1) for vocabulary entry ``index`` at decoding step ``step`` (53 bits)."""
    z = mix64((step_key(key, step) + index * GOLDEN) & M64)
    return ((z >> 11) + 0.5) * 2.0**-53


def derive_seed(base: int, *parts: object) -> int:
    """A seed in [0, 2**31) from a base seed and labels (e.g. prompt id and step)."""
    text = "/".join(str(p) for p in (base, *parts))
    return int.from_bytes(hashlib.sha256(f"valuedrift-seed/{text}".encode()).digest()[:8], "little") % SEED_LIMIT


def fresh_seed() -> int:
    """A random seed for a request that did not give one (reported in the responses' metadata)."""
    return secrets.randbelow(SEED_LIMIT)

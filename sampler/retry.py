"""Generation errors and retry with exponential backoff (pure logic).

>>> policy = RetryPolicy(attempts=4, base=0.5, cap=3.0, jitter=0.0)
>>> [backoff_delay(policy, n) for n in (1, 2, 3, 4)]
[0.5, 1.0, 2.0, 3.0]
>>> backoff_delay(policy, 1, retry_after=2.5)
2.5
"""

from __future__ import annotations

import random
from dataclasses import dataclass


class GenerationError(Exception):
    """A generation that failed. ``retryable`` errors (timeouts, 5xx, 429, OOM) are tried again."""

    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the n-th retry waits about base·2^(n-1) seconds, at most ``cap``."""

    attempts: int = 3
    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5  # the delay is scaled by a random factor in [1 - jitter, 1]

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff base and cap must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter}")


def backoff_delay(policy: RetryPolicy, failures: int, *, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``failures``-th failed attempt (1-based).

    A server's Retry-After is honoured up to the cap; jitter (from ``rng``) spreads retries of many
    requests that failed together.
    """
    if failures < 1:
        raise ValueError("failures must be >= 1")
    delay = min(policy.cap, policy.base * 2.0 ** min(failures - 1, 60))
    if policy.jitter:
        delay *= 1.0 - policy.jitter * (rng or random).random()
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, policy.cap))
    return delay

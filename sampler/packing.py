"""Packing sampled rows of many requests into micro-batches (pure logic, no torch, no Kafka).

A request with k samples is k independent *rows* (the same prompt, sample index 0..k-1). Because every
row draws its random numbers from its own stream (see ``valuedrift.sampler.seeding``), rows can be packed freely:
one request may be split over several micro-batches, and rows of several requests may share one, without
changing any sample. A micro-batch is bounded by rows and by padded tokens
(rows x (longest prompt + most new tokens)); rows are sorted by prompt length to waste little padding.

>>> batches = pack([Item(prompt_len=10, k=3, max_new_tokens=5), Item(prompt_len=4, k=2, max_new_tokens=5)],
...                max_rows=4, max_tokens=1000)
>>> [[(r.request, r.sample) for r in b.rows] for b in batches]
[[(1, 0), (1, 1), (0, 0), (0, 1)], [(0, 2)]]
>>> batches[0].prompt_len, batches[0].cost
(10, 60)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """What packing needs to know about one request."""

    prompt_len: int
    k: int
    max_new_tokens: int


@dataclass(frozen=True)
class Row:
    request: int  # index into the packed items
    sample: int  # sample index within the request, 0..k-1


@dataclass(frozen=True)
class MicroBatch:
    rows: tuple[Row, ...]
    prompt_len: int  # longest prompt in the batch (the padded length)
    max_new_tokens: int  # most new tokens any row may generate

    @property
    def cost(self) -> int:
        """Padded tokens: rows x (prompt + new tokens)."""
        return len(self.rows) * (self.prompt_len + self.max_new_tokens)


def pack(items: Sequence[Item], max_rows: int, max_tokens: int) -> list[MicroBatch]:
    """Split every request's rows into micro-batches of at most ``max_rows`` rows and ``max_tokens`` tokens.

    A single row larger than ``max_tokens`` gets a micro-batch of its own. Every (request, sample) pair
    appears in exactly one micro-batch.
    """
    if max_rows < 1 or max_tokens < 1:
        raise ValueError("max_rows and max_tokens must be >= 1")
    order = sorted(range(len(items)), key=lambda i: (items[i].prompt_len, items[i].max_new_tokens, i))
    out: list[MicroBatch] = []
    rows: list[Row] = []
    plen = new = 0
    for i in order:
        it = items[i]
        if it.k < 0 or it.prompt_len < 0 or it.max_new_tokens < 0:
            raise ValueError(f"item {i} has a negative size: {it}")
        for s in range(it.k):
            p2, n2 = max(plen, it.prompt_len), max(new, it.max_new_tokens)
            if rows and (len(rows) + 1 > max_rows or (len(rows) + 1) * (p2 + n2) > max_tokens):
                out.append(MicroBatch(tuple(rows), plen, new))
                rows, p2, n2 = [], it.prompt_len, it.max_new_tokens
            rows.append(Row(i, s))
            plen, new = p2, n2
    if rows:
        out.append(MicroBatch(tuple(rows), plen, new))
    return out

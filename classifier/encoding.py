"""Turn (prompt, response) pairs into token ids the same way in training and in serving (``tokenizers`` only).

Input template: ``<prefix> prompt <middle> response <suffix>``, e.g. for BERT-family
encoders ``[CLS] prompt [SEP] response [SEP]`` and for T5 ``prompt </s> response </s>``.
The prompt keeps its first ``max_prompt_tokens`` tokens (or, with ``prompt_tail_tokens``, its head and that
many of its last tokens: a jailbreak wraps the request in a long role-play or ends it with an adversarial
suffix); a long response keeps its head and its tail (refusals and compliance usually show at the start, and
disclaimers at the end), so empty and huge inputs never fail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


@dataclass(frozen=True)
class PairTemplate:
    """Special token ids around the pair, the pad id, and the length budget."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    pad_id: int
    max_length: int = 256
    max_prompt_tokens: int = 64
    prompt_tail_tokens: int = 0  # of the prompt budget, kept from the prompt's end (0: its head only)

    def __post_init__(self) -> None:
        if not 0 <= self.prompt_tail_tokens <= self.max_prompt_tokens:
            raise ValueError(f"prompt_tail_tokens must be 0 to max_prompt_tokens ({self.max_prompt_tokens}), got "
                             f"{self.prompt_tail_tokens}")

    @classmethod
    def load(cls, path: Path) -> PairTemplate:
        d = json.loads(path.read_text())
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def as_dict(self) -> dict:
        """The fields, without ``prompt_tail_tokens`` where it is 0 (so older models' files stay as they were)."""
        d = asdict(self)
        if not self.prompt_tail_tokens:
            del d["prompt_tail_tokens"]
        return d

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def prompt_ids(self, ids: list[int]) -> list[int]:
        """The prompt tokens kept: the first ``max_prompt_tokens``, or the head and ``prompt_tail_tokens`` of the tail.

        >>> PairTemplate((), (), (), 0, max_prompt_tokens=4).prompt_ids(list(range(10)))
        [0, 1, 2, 3]
        >>> PairTemplate((), (), (), 0, max_prompt_tokens=4, prompt_tail_tokens=2).prompt_ids(list(range(10)))
        [0, 1, 8, 9]
        """
        if len(ids) <= self.max_prompt_tokens or not self.prompt_tail_tokens:
            return ids[: self.max_prompt_tokens]
        head = self.max_prompt_tokens - self.prompt_tail_tokens
        return ids[:head] + ids[len(ids) - self.prompt_tail_tokens:]


def head_tail(ids: list[int], budget: int) -> list[int]:
    """Keep at most ``budget`` ids: the head and the tail, half each.

    >>> head_tail(list(range(10)), 4)
    [0, 1, 8, 9]
    >>> head_tail([1, 2], 4)
    [1, 2]
    """
    if len(ids) <= budget:
        return ids
    if budget <= 0:
        return []
    head = (budget + 1) // 2
    return ids[:head] + ids[len(ids) - (budget - head):]


class PairEncoder:
    """Encode pairs into padded ``input_ids`` and ``attention_mask`` arrays (int64)."""

    # Characters beyond this are never looked at: it bounds tokenizer time on 10 MB responses.
    MAX_CHARS = 20_000

    def __init__(self, tokenizer: Tokenizer, template: PairTemplate) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    @classmethod
    def from_dir(cls, model_dir: Path) -> PairEncoder:
        return cls(Tokenizer.from_file(str(model_dir / "tokenizer.json")),
                   PairTemplate.load(model_dir / "template.json"))

    def _clip(self, text: str) -> str:
        if len(text) <= self.MAX_CHARS:
            return text
        half = self.MAX_CHARS // 2
        return text[:half] + " … " + text[-half:]

    def ids(self, prompt: str, response: str) -> list[int]:
        return self.ids_many([prompt], [response])[0]

    def ids_many(self, prompts: Sequence[str], responses: Sequence[str]) -> list[list[int]]:
        """The ids of many pairs, tokenised in one call (the tokenizer spreads it over its threads)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        t = self.template
        specials = len(t.prefix) + len(t.middle) + len(t.suffix)
        texts = [self._clip(x) for pair in zip(prompts, responses, strict=True) for x in pair]
        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        rows = []
        for i in range(0, len(encoded), 2):
            p_ids = t.prompt_ids(encoded[i].ids)
            r_ids = head_tail(encoded[i + 1].ids, t.max_length - specials - len(p_ids))
            rows.append([*t.prefix, *p_ids, *t.middle, *r_ids, *t.suffix])
        return rows

    def encode(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return self.pad(self.ids_many(prompts, responses))

    def pad(self, rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max((len(r) for r in rows), default=1)
        ids = np.full((len(rows), width), self.template.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask

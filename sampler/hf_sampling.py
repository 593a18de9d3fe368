"""Per-row sampling for transformers' ``generate`` (imports torch: load only inside the hf backend).

``generate`` runs greedy (``do_sample=False``); a logits processor turns each row into an exact sample from
softmax(logits / T) restricted to the row's top-p nucleus, by inverse-CDF sampling with one uniform per row
and decoding step from the row's own counter-based stream (``valuedrift.sampler.seeding``), and forces that token.
Rows with T = 0 are left alone (greedy). Temperature, top-p and the random stream are per row, so requests
with different settings share a micro-batch and no row's randomness depends on another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from valuedrift.sampler.seeding import GOLDEN, M64, MIX1, MIX2, mix64


def _signed(x: int) -> int:
    x &= M64
    return x - (1 << 64) if x >= 1 << 63 else x


_GOLDEN, _MIX1, _MIX2 = _signed(GOLDEN), _signed(MIX1), _signed(MIX2)


def _srl(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    z = z + _GOLDEN  # int64 arithmetic wraps like uint64 (two's complement)
    z = (z ^ _srl(z, 30)) * _MIX1
    z = (z ^ _srl(z, 27)) * _MIX2
    return z ^ _srl(z, 31)


def row_uniforms(keys: torch.Tensor, step: int, vocab: int) -> torch.Tensor:
    """Uniforms in (0, 1), float64, shape (rows, vocab), equal to ``valuedrift.sampler.seeding.uniform`` elementwise."""
    sk = _mix(keys ^ _signed(mix64(step)))
    idx = torch.arange(vocab, device=keys.device, dtype=torch.int64)
    z = _mix(sk[:, None] + idx[None, :] * _GOLDEN)
    return (_srl(z, 11).to(torch.float64) + 0.5) * 2.0**-53


def top_p_mask(logits: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Set logits outside each row's nucleus (smallest set with mass >= top_p) to -inf."""
    keep_all = top_p >= 1.0
    if bool(keep_all.all()):
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # mass of the tokens ranked above
    drop_sorted = (before >= top_p[:, None]) & ~keep_all[:, None]
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


class RowSampler(LogitsProcessor):
    """Inverse-CDF sampling with a random stream per row, keyed by (row key, decoding step)."""

    def __init__(self, keys: Sequence[int], temperatures: Sequence[float], top_ps: Sequence[float],
                 start_len: int, device: torch.device) -> None:
        self.keys = torch.tensor([_signed(k) for k in keys], dtype=torch.int64, device=device)
        self.temps = torch.tensor(temperatures, dtype=torch.float32, device=device)
        self.top_ps = torch.tensor(top_ps, dtype=torch.float32, device=device)
        self.sampled = (self.temps > 0).nonzero().squeeze(1)
        self.start_len = start_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.sampled.numel() == 0:
            return scores
        step = input_ids.shape[1] - self.start_len
        out = scores.float().clone()
        idx = self.sampled
        logits = top_p_mask(out[idx] / self.temps[idx, None], self.top_ps[idx])
        cdf = torch.softmax(logits, dim=-1).double().cumsum(dim=-1)
        u = row_uniforms(self.keys[idx], step, 1) * cdf[:, -1:]
        choice = torch.searchsorted(cdf, u).clamp_(max=cdf.shape[-1] - 1)
        forced = torch.full_like(logits, float("-inf")).scatter_(1, choice, 0.0)
        out[idx] = forced
        return out


@dataclass(frozen=True)
class RowSpec:
    prompt_ids: tuple[int, ...]
    key: int
    temperature: float
    top_p: float
    max_new_tokens: int


def generate_rows(model, rows: Sequence[RowSpec], *, pad_id: int, eos_ids: Sequence[int],  # noqa: ANN001
                  device: torch.device, ignore_eos: bool = False) -> list[tuple[list[int], str]]:
    """Generate every row of one micro-batch; return (new token ids, finish reason) per row.

    Prompts are left-padded; each row's output is cut at its first end-of-sequence token and at its own
    ``max_new_tokens`` (so a row gives the same tokens whatever the longest row of its batch is).
    """
    plen = max(len(r.prompt_ids) for r in rows)
    new = max(r.max_new_tokens for r in rows)
    ids = torch.full((len(rows), plen), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), plen), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r.prompt_ids)
        ids[i, plen - n:] = torch.tensor(r.prompt_ids, dtype=torch.long)
        mask[i, plen - n:] = 1
    ids, mask = ids.to(device), mask.to(device)
    proc = RowSampler([r.key for r in rows], [r.temperature for r in rows], [r.top_p for r in rows], plen, device)
    cfg = GenerationConfig(max_new_tokens=new, do_sample=False, num_beams=1, pad_token_id=pad_id,
                           eos_token_id=list(eos_ids) or None,
                           min_new_tokens=new if ignore_eos else None)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg,
                             logits_processor=LogitsProcessorList([proc]))
    gen = out[:, plen:].tolist()
    eos = set(eos_ids)
    result = []
    for r, toks in zip(rows, gen, strict=True):
        toks = toks[: r.max_new_tokens]
        cut = next((j for j, t in enumerate(toks) if t in eos), None) if not ignore_eos else None
        if cut is None:
            result.append((toks, "length"))
        else:
            result.append((toks[:cut], "stop"))
    return result

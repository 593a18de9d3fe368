"""Train only the top layers of an encoder, from the frozen lower layers' output computed once and kept on disk.

A LoRA fine-tune of a 110M-parameter encoder on two CPU cores costs most of an hour an epoch. With LoRA on the
top ``n`` layers only (``classifier train --top-layers n``), everything below them is frozen, so what the lower
layers make of a pair never changes: it is computed once, written to disk in fp16 and read back every epoch,
and an epoch costs the top layers' forward and backward passes only (about a sixth of a full pass for 2 of 12).

The split works on BERT-family and MPNet encoders (``encoder.embeddings`` then ``encoder.encoder.layer``): the
lower part runs the encoder with only its first layers; the upper part runs it with only the top layers, the
embedding output replaced by the stored activations. Both are the encoder's own forward, so the attention mask
and MPNet's relative position bias are built exactly as in a full pass. T5 keeps its position bias in the first
block, so it cannot be split this way.

The store is a folder named by a hash of everything that determines its content (the backbone's weights, the
number of lower layers, the token ids of every pair); it is written in chunks, each renamed into place when
complete, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHUNK = 512  # pairs per file


def layer_list(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's stack of transformer layers; ValueError for an encoder that cannot be split."""
    stack = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList) or not hasattr(encoder, "embeddings"):
        raise ValueError(f"--top-layers: a {type(encoder).__name__} cannot be split into frozen and trained layers "
                         "(BERT-family and MPNet encoders can); train without --top-layers")
    return stack


def check_top_layers(encoder: nn.Module, top: int) -> int:
    """The number of frozen lower layers when the top ``top`` are trained; ValueError unless 1 <= top < depth."""
    depth = len(layer_list(encoder))
    if not 1 <= top < depth:
        raise ValueError(f"--top-layers {top}: this encoder has {depth} layers; train 1 to {depth - 1} of them, "
                         "or all (--top-layers 0, no activation cache)")
    return depth - top


class LayerSplit:
    """Run an encoder's lower layers alone, or its upper layers from stored lower-layer output."""

    def __init__(self, encoder: nn.Module, top: int) -> None:
        self.encoder = encoder
        self.frozen = check_top_layers(encoder, top)
        layers = list(layer_list(encoder))
        self._lower, self._upper = layers[: self.frozen], layers[self.frozen :]

    @contextmanager
    def _only(self, layers: list[nn.Module], embedded: torch.Tensor | None = None) -> Iterator[None]:
        holder = self.encoder.encoder
        full = holder.layer
        holder.layer = nn.ModuleList(layers)
        hook = None
        if embedded is not None:  # the embedding output is replaced by the stored activations
            hook = self.encoder.embeddings.register_forward_hook(lambda _m, _i, _o: embedded)
        try:
            yield
        finally:
            holder.layer = full
            if hook is not None:
                hook.remove()

    def lower(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The hidden states after the frozen layers (no gradient)."""
        with torch.inference_mode(), self._only(self._lower):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    @contextmanager
    def upper(self, activations: torch.Tensor) -> Iterator[None]:
        """Within this block, calling the model runs only the top layers on ``activations`` (the ids and mask
        passed to the model must be the ones the activations were computed from)."""
        with self._only(self._upper, activations):
            yield


def weights_fingerprint(path: Path) -> str:
    """A hash of a checkpoint folder's weights and config (what decides the lower layers' output)."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix in (".safetensors", ".bin") or f.name == "config.json":
            h.update(f.name.encode())
            with f.open("rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def store_key(backbone: str, frozen: int, rows: Sequence[Sequence[int]]) -> str:
    """The store's name: a hash of the backbone's fingerprint, the frozen depth and every pair's token ids.

    >>> store_key("abc", 10, [[0, 5, 2]]) == store_key("abc", 10, [[0, 5, 2]]) != store_key("abc", 9, [[0, 5, 2]])
    True
    """
    h = hashlib.sha256(f"{backbone}|{frozen}|".encode())
    for row in rows:
        h.update(json.dumps(list(row)).encode() + b"\n")
    return h.hexdigest()[:20]


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` into ``path.partial``, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def lower_activations(split: LayerSplit, rows: Sequence[Sequence[int]], pad: Callable, folder: Path,
                      device: torch.device, batch_size: int = 32,
                      progress: Callable[[int], None] | None = None) -> list[torch.Tensor]:
    """Each row's hidden states after the frozen layers (fp16, ``[len(row), hidden]``), computed once into
    ``folder`` (chunk files renamed into place when complete) and read back from there afterwards.

    ``pad``: ``PairEncoder.pad`` (rows → ids, mask arrays). ``progress`` is called with the number of rows done.
    """
    folder.mkdir(parents=True, exist_ok=True)
    split.encoder.eval()
    out: list[torch.Tensor] = []
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        file = folder / f"chunk-{start // CHUNK:05d}.npy"
        if not file.exists():
            order = sorted(range(len(part)), key=lambda i: len(part[i]))
            pieces: list[np.ndarray | None] = [None] * len(part)
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                ids, mask = pad([part[i] for i in idx])
                hidden = split.lower(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
                hidden = hidden.to(torch.float16).cpu().numpy()
                for j, i in enumerate(idx):
                    pieces[i] = hidden[j, : len(part[i])]
            save_array(file, np.concatenate(pieces, axis=0))
        flat = torch.from_numpy(np.load(file))
        if flat.shape[0] != sum(len(r) for r in part):
            raise ValueError(f"{file}: holds {flat.shape[0]} token rows, not the {sum(len(r) for r in part)} "
                             "expected; delete the folder and train again")
        out.extend(torch.split(flat, [len(r) for r in part]))
        if progress is not None:
            progress(len(part))
    return out


def pad_activations(pieces: Sequence[torch.Tensor], length: int) -> torch.Tensor:
    """Stack fp16 activations of different lengths into an fp32 batch ``[n, length, hidden]``, zero-padded.

    >>> pad_activations([torch.ones(2, 3), torch.ones(1, 3)], 2).sum().item()
    9.0
    """
    batch = torch.zeros(len(pieces), length, pieces[0].shape[1], dtype=torch.float32)
    for i, p in enumerate(pieces):
        batch[i, : p.shape[0]] = p.to(torch.float32)
    return batch

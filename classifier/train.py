"""Fine-tune the pair classifier (LoRA on the encoder's attention + a linear head), seeded, with early stopping.

Only the LoRA factors and the head are saved (``adapter.safetensors``, well under 5 MB), with
``adapter.json`` describing the backbone, template, taxonomy and the per-epoch validation metrics.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from tokenizers import Tokenizer
from valuedrift.classifier.activation_cache import (
    LayerSplit,
    check_top_layers,
    lower_activations,
    pad_activations,
    store_key,
    weights_fingerprint,
)
from valuedrift.classifier.datasets import Example
from valuedrift.classifier.distill import UNLABELLED, Teacher
from valuedrift.classifier.encoding import PairEncoder, PairTemplate
from valuedrift.classifier.metrics import classification_report
from valuedrift.classifier.model import PairClassifier, default_template, load_encoder, resolve_backbone
from valuedrift.streams.core.taxonomy import DEFAULT_TAXONOMY, Taxonomy


@dataclass(frozen=True)
class TrainConfig:
    backbone: str = "minilm"
    epochs: int = 6
    batch_size: int = 16
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "linear": warm-up, then a linear decay to 0 at the last epoch (lr_factor)
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = "attention"
    max_length: int = 192
    max_prompt_tokens: int = 64
    prompt_tail_tokens: int = 0  # of the prompt budget, kept from the prompt's end (encoding.PairTemplate)
    patience: int = 2
    seed: int = 13
    threads: int = 2
    device: str = "cpu"  # or "cuda" (or "cuda:N"); "auto" picks CUDA when torch sees a GPU
    head: str = "flat"  # or "factorised" (model.FactorisedHead)
    top_layers: int = 0  # LoRA in the top n layers only, the lower layers' output cached (0: LoRA in every layer)
    # (source, k): each training pair whose ``source`` is that source is seen k times an epoch
    oversample: tuple[tuple[str, int], ...] = ()


def oversampled_index(examples: Sequence[Example], oversample: Sequence[tuple[str, int]]) -> list[int]:
    """The indices of the training pairs an epoch goes through: each pair of an oversampled source k times, in place.

    >>> from valuedrift.classifier.datasets import Example
    >>> ex = [Example("a", "p", "r", "g1", source="xstest"), Example("b", "p", "r", "g2", source="hh-rlhf")]
    >>> oversampled_index(ex, [("xstest", 3)])
    [0, 0, 0, 1]
    """
    times = dict(oversample)
    unknown = sorted(set(times) - {e.source for e in examples})
    if unknown:
        raise ValueError(f"--oversample: no training pair has source {', '.join(unknown)}; "
                         f"the sources are {', '.join(sorted({e.source or '?' for e in examples}))}")
    return [i for i, e in enumerate(examples) for _ in range(times.get(e.source or "", 1))]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch sees no CUDA GPU (torch {torch.__version__}); use cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r} is not a torch device (cpu, cuda, cuda:0, auto)") from err


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batches_by_length(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Group indices of similar length into batches (less padding), then shuffle the batches."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    out = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(out)
    return out


@dataclass
class Batches:
    """Token rows, and where only the top layers train, their cached lower-layer activations."""

    encoder: PairEncoder
    rows: list[list[int]]
    activations: list[torch.Tensor] | None = None
    split: LayerSplit | None = None

    def logits(self, model: PairClassifier, idx: Sequence[int]) -> torch.Tensor:
        device = model.device
        ids, mask = self.encoder.pad([self.rows[i] for i in idx])
        ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
        if self.activations is None or self.split is None:
            return model(ids_t, mask_t)
        cached = pad_activations([self.activations[i] for i in idx], ids.shape[1]).to(device)
        with self.split.upper(cached):
            return model(ids_t, mask_t)


def predict_logits(model: PairClassifier, encoder: PairEncoder | Batches, rows: list[list[int]] | None = None,
                   batch_size: int = 32) -> np.ndarray:
    """Logits of every row (``encoder`` and ``rows``, or a ``Batches`` with cached activations)."""
    data = encoder if isinstance(encoder, Batches) else Batches(encoder, rows or [])
    model.eval()
    order = sorted(range(len(data.rows)), key=lambda i: len(data.rows[i]))
    out = np.zeros((len(data.rows), model.n_outputs), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            out[idx] = data.logits(model, idx).cpu().numpy()
    return out


INIT_KEYS = ("backbone", "lora_r", "lora_alpha", "lora_targets", "max_length", "max_prompt_tokens", "top_layers",
             "head")
INIT_DEFAULTS = {"top_layers": 0, "head": "flat"}  # for adapters written before these options


def _init_card(init: Path) -> dict[str, Any]:
    card_file = init / "adapter.json"
    if not card_file.exists():
        raise ValueError(f"--init {init}: no adapter.json there; pass a folder written by `classifier train` "
                         "(the default's is classifier/weights/default)")
    return json.loads(card_file.read_text())


def init_config(init: Path, cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the architecture of the adapter in ``init`` (LoRA rank and targets, lengths, backbone), so
    training can start from its weights."""
    own = _init_card(init)["config"]
    return replace(cfg, **{k: own.get(k, INIT_DEFAULTS.get(k)) for k in INIT_KEYS})


def train(train_ex: Sequence[Example], val_ex: Sequence[Example], cfg: TrainConfig, out_dir: Path,
          taxonomy: Taxonomy = DEFAULT_TAXONOMY, progress: bool = True, init: Path | None = None,
          resume: bool = False, activations: Path | None = None, teacher: Teacher | None = None,
          unlabelled: Sequence[Example] = ()) -> dict[str, Any]:
    """Train, keep the epoch with the best validation macro-F1, and save the adapter; return the card.

    ``init``: an adapter folder to start from (its LoRA factors and head; ``cfg`` must come from
    ``init_config``), e.g. to fine-tune the default classifier on your own labels.
    ``resume``: continue from ``out_dir/checkpoint.pt`` (written after every epoch) where an earlier run of the
    same configuration and data stopped; ``cfg.epochs`` may be raised to train on.
    ``activations``: where the lower layers' cached output goes with ``cfg.top_layers`` [the model cache].
    ``teacher``: distil (``valuedrift.classifier.distill``): its probabilities for ``train_ex`` and for the
    ``unlabelled`` pairs, which are trained on the teacher's probabilities alone.
    """
    if not train_ex or not val_ex:
        raise ValueError("training needs non-empty training and validation data")
    lr_factor(cfg.lr_schedule, 0, 1)  # an unknown schedule fails here, not after the data is encoded
    if init is not None:
        own = _init_card(init)  # read once: its architecture and its taxonomy must be this run's
        differ = [k for k in INIT_KEYS if own["config"].get(k, INIT_DEFAULTS.get(k)) != getattr(cfg, k)]
        if differ:
            raise ValueError(f"--init {init}: {', '.join(differ)} differ from the adapter's; use init_config")
        init_taxonomy = own["taxonomy"]
        if list(init_taxonomy) != list(taxonomy.codes):
            raise ValueError(f"--init {init}: its taxonomy {init_taxonomy} is not {list(taxonomy.codes)}")
    if unlabelled and teacher is None:
        raise ValueError("unlabelled pairs train on a teacher's probabilities: pass --teacher with --unlabelled")
    if teacher is not None and teacher.codes and teacher.codes != taxonomy.codes:
        raise ValueError(f"the teacher's categories ({', '.join(teacher.codes)}) are not the student's "
                         f"({', '.join(taxonomy.codes)}): train with the teacher's taxonomy (--taxonomy)")
    codes = taxonomy.codes
    labelled = list(train_ex)
    train_ex = [*labelled, *unlabelled]
    # what one epoch goes through: the labelled pairs (oversampled), then each unlabelled pair once
    seen_index = oversampled_index(labelled, cfg.oversample) + list(range(len(labelled), len(train_ex)))
    fingerprint = data_fingerprint(train_ex, val_ex, cfg, init, teacher.fingerprint() if teacher else "")
    checkpoint = out_dir / CHECKPOINT
    state = load_checkpoint(checkpoint, fingerprint) if resume else None
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    kind, path = resolve_backbone(cfg.backbone)
    model = PairClassifier(load_encoder(kind, path), taxonomy.size, head=cfg.head, codes=tuple(codes))
    template = replace(default_template(kind, model.encoder, path, cfg.max_length, cfg.max_prompt_tokens),
                       prompt_tail_tokens=cfg.prompt_tail_tokens)
    encoder = PairEncoder(Tokenizer.from_file(str(path / "tokenizer.json")), template)
    split = LayerSplit(model.encoder, cfg.top_layers) if cfg.top_layers else None
    lora_layers = model.add_lora(kind, cfg.lora_r, cfg.lora_alpha, cfg.lora_targets,
                                 from_layer=split.frozen if split else 0)
    init_card = None
    if init is not None:
        init_card = {"adapter": str(init), "sha256_12": load_adapter_weights(model, init, exact=True)}
    model.to(device)
    x_train = encoder.ids_many([e.prompt for e in train_ex], [e.response for e in train_ex])
    x_val = encoder.ids_many([e.prompt for e in val_ex], [e.response for e in val_ex])
    train_data, val_data = Batches(encoder, x_train), Batches(encoder, x_val)
    if split is not None:
        backbone_hash = weights_fingerprint(path)  # hashing MPNet-base's 438 MB once, not once per row set
        train_data, val_data = (cached_batches(split, encoder, rows, backbone_hash, activations, device, progress)
                                for rows in (x_train, x_val))
    y_train = torch.tensor([codes.index(e.label) if e.label != UNLABELLED else -100 for e in train_ex], device=device)
    soft = None if teacher is None else torch.from_numpy(
        np.concatenate([teacher.labelled, teacher.unlabelled]).astype(np.float32)).to(device)
    freq = Counter(train_ex[i].label for i in seen_index if train_ex[i].label != UNLABELLED)
    # sqrt-inverse-frequency class weights: rare categories (g2) matter without dominating
    n_seen = sum(freq.values())
    weights = torch.tensor([(n_seen / max(freq.get(c, 0), 1)) ** 0.5 for c in codes], dtype=torch.float32)
    weights = weights / weights.mean()
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights.to(device))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    rng = random.Random(cfg.seed)
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    first, stopped, spent = 1, False, 0.0
    if state is not None:
        model.load_state_dict(state["weights"], strict=False)
        opt.load_state_dict(state["optimizer"])
        rng.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        history, best, stopped, spent = state["history"], state["best"], state["stopped"], state["seconds"]
        first = state["epoch"] + 1
    started = time.monotonic() - spent
    steps = math.ceil(len(seen_index) / cfg.batch_size)  # batches_by_length's batches an epoch
    total_steps = steps * cfg.epochs
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        if state is not None:
            bar.console.print(f"resumed from {checkpoint} after epoch {first - 1}")
        for epoch in range(first, cfg.epochs + 1):
            if stopped:
                break
            model.train()
            batches = batches_by_length([len(x_train[i]) for i in seen_index], cfg.batch_size, rng)
            task = bar.add_task(f"epoch {epoch}/{cfg.epochs}", total=len(batches), loss=0.0)
            total = 0.0
            for b, idx in enumerate(batches, 1):
                rows = [seen_index[i] for i in idx]
                logits = train_data.logits(model, rows)
                loss = loss_fn(logits, y_train[rows]) if teacher is None or soft is None else distillation_loss(
                    logits, y_train[rows], soft[rows], loss_fn, teacher.weight, teacher.balanced)
                opt.zero_grad()
                loss.backward()
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, (epoch - 1) * steps + b - 1, total_steps)
                opt.step()
                total += loss.item()
                bar.update(task, advance=1, loss=total / b)
            pred = predict_logits(model, val_data).argmax(axis=1)
            report = classification_report([e.label for e in val_ex], [codes[i] for i in pred], codes)
            history.append({"epoch": epoch, "train_loss": total / len(batches), "val_accuracy": report["accuracy"],
                            "val_macro_f1": report["macro_f1"]})
            bar.console.print(f"epoch {epoch}: train loss {total / len(batches):.4f}  val accuracy "
                              f"{report['accuracy']:.3f}  val macro-F1 {report['macro_f1']:.3f}")
            if best is None or report["macro_f1"] > best[0]:
                best = (report["macro_f1"], epoch, {k: v.cpu() for k, v in model.trainable_state().items()})
            elif epoch - best[1] >= cfg.patience:
                bar.console.print(f"early stop: no gain in validation macro-F1 for {cfg.patience} epochs")
                stopped = True
            save_checkpoint(checkpoint, {
                "fingerprint": fingerprint, "epoch": epoch, "weights": model.trainable_state(),
                "optimizer": opt.state_dict(), "history": history, "best": best, "stopped": stopped,
                "seconds": time.monotonic() - started,
                "rng": {"python": rng.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}})
    assert best is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in best[2].items()}, str(out_dir / "adapter.safetensors"))
    card = {
        "backbone": cfg.backbone,
        "kind": kind,
        "taxonomy": list(codes),
        "template": template.as_dict(),
        "lora_layers": lora_layers,
        "config": asdict(cfg),
        "init": init_card,
        "best_epoch": best[1],
        "history": history,
        "train_seconds": round(time.monotonic() - started, 1),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "distillation": None if teacher is None else {
            "teacher": teacher.name, "weight": teacher.weight, "balanced": teacher.balanced,
            "unlabelled": len(unlabelled),
            "unlabelled_sources": dict(Counter(e.source or "?" for e in unlabelled))},
        "data": {"train": dict(sorted(Counter(e.label for e in labelled).items())),
                 "train_pairs_per_epoch": len(seen_index),
                 "val": dict(sorted(Counter(e.label for e in val_ex).items())),
                 "train_sources": dict(Counter(e.source or "?" for e in labelled)),
                 "val_sources": dict(Counter(e.source or "?" for e in val_ex))},
    }
    (out_dir / "adapter.json").write_text(json.dumps(card, indent=2) + "\n")
    if kind != "bert" or cfg.backbone != "minilm":
        shutil.copy(path / "tokenizer.json", out_dir / "tokenizer.json")
    return card


CHECKPOINT = "checkpoint.pt"
RESUMABLE = ("epochs", "patience", "threads", "device")  # may differ between a run and its resumption
# options added after checkpoints were written, left out of the fingerprint at the value that reproduces them
BEFORE_OPTION = {"lr_schedule": "constant"}
LR_SCHEDULES = ("constant", "linear")
WARMUP = 0.06  # of all steps, for the linear schedule


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The multiple of the learning rate for optimizer step ``step`` (from 0) of ``total``: 1 throughout for
    ``"constant"``; for ``"linear"``, a linear warm-up over the first 6 % of the steps, then a linear decay
    that reaches 0 after the last step (the usual schedule for fine-tuning a transformer).

    >>> [round(lr_factor("linear", s, 100), 3) for s in (0, 2, 5, 6, 53, 99)]
    [0.167, 0.5, 1.0, 1.0, 0.5, 0.011]
    >>> lr_factor("constant", 99, 100)
    1.0
    """
    if schedule == "constant":
        return 1.0
    if schedule != "linear":
        raise ValueError(f"the learning-rate schedule must be {' or '.join(LR_SCHEDULES)}, got {schedule!r}")
    warm = max(1, round(WARMUP * total))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


def distillation_loss(logits: torch.Tensor, gold: torch.Tensor, soft: torch.Tensor,
                      loss_fn: torch.nn.CrossEntropyLoss, weight: float, balanced: bool = False) -> torch.Tensor:
    """``(1 - weight) · CE(gold) + weight · KL(soft ‖ softmax(logits))``; the cross-entropy over the labelled
    pairs of the batch (gold >= 0), the KL over all. ``balanced``: each pair's KL weighted by ``loss_fn``'s class
    weights averaged under ``soft`` (a weighted mean, as the cross-entropy's), so the teacher's commonest class
    does not outweigh the rare ones."""
    per_pair = torch.nn.functional.kl_div(torch.log_softmax(logits, dim=-1), soft, reduction="none").sum(-1)
    if balanced and loss_fn.weight is not None:
        w = soft @ loss_fn.weight
        kl = (w * per_pair).sum() / w.sum()
    else:
        kl = per_pair.mean()
    if not bool((gold >= 0).any()):
        return weight * kl
    return (1.0 - weight) * loss_fn(logits, gold) + weight * kl


def data_fingerprint(train_ex: Sequence[Example], val_ex: Sequence[Example], cfg: TrainConfig,
                     init: Path | None, teacher: str = "") -> str:
    """A hash of what a resumed run must share with the run it continues: the data, the warm start and the
    configuration (except the patience, threads and device, and the epochs unless a schedule spans them)."""
    conf = {k: v for k, v in asdict(cfg).items()
            if k not in RESUMABLE and (k not in BEFORE_OPTION or BEFORE_OPTION[k] != v)}
    if cfg.lr_schedule != "constant":
        conf["epochs"] = cfg.epochs  # the decay ends at the last epoch: more epochs would be another schedule
    h = hashlib.sha256(json.dumps(conf, sort_keys=True, default=list).encode())
    h.update(f"{init}|{teacher}".encode())
    for e in (*train_ex, None, *val_ex):
        h.update(b"|" if e is None else json.dumps([e.id, e.prompt, e.response, e.label, e.source]).encode())
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write the training state after an epoch; the file is replaced only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any]:
    """The state saved by the run to resume; ValueError when there is none or it is another run's."""
    if not path.exists():
        raise ValueError(f"--resume: {path} does not exist; no interrupted run to continue in that --out "
                         "(run without --resume to start)")
    try:
        state = torch.load(path, weights_only=False)  # written by save_checkpoint: a file of this program's
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file fails in many ways inside torch/pickle
        raise ValueError(f"--resume: {path} cannot be read ({err.__class__.__name__}); delete it and run without "
                         "--resume") from None
    if state.get("fingerprint") != fingerprint:
        raise ValueError(f"--resume: {path} is from a run with other data or options (only --epochs, "
                         "--patience, --threads and --device may change); run without --resume to start over")
    return state


def cached_batches(split: LayerSplit, encoder: PairEncoder, rows: list[list[int]], backbone_hash: str,
                   activations: Path | None, device: torch.device, progress: bool) -> Batches:
    """``Batches`` of ``rows`` with the frozen layers' output computed once into the activation store
    (``backbone_hash``: ``weights_fingerprint`` of the backbone folder)."""
    from valuedrift.classifier.cache import cache_root

    key = store_key(backbone_hash, split.frozen, rows)
    folder = (activations or cache_root() / "activations") / key
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"frozen layers ({split.frozen}), cached in {folder}", total=len(rows))
        try:
            acts = lower_activations(split, rows, encoder.pad, folder, device,
                                     progress=lambda n: bar.update(task, advance=n))
        except OSError as err:
            raise ValueError(f"--activation-cache: cannot write {folder} ({err.strerror or err}); pass a folder "
                             "with room (about 0.15 MB a pair for MPNet-base)") from None
    return Batches(encoder, rows, acts, split)


def load_adapter_weights(model: PairClassifier, adapter_dir: Path, exact: bool = False) -> str:
    """Load an adapter's LoRA factors and head into ``model`` (LoRA layers already added); return the first
    12 hex digits of the file's sha256.

    ``exact``: the file must hold every trainable tensor (a warm start), not just tensors the model has.
    """
    from safetensors.torch import load

    raw = (adapter_dir / "adapter.safetensors").read_bytes()  # read once: loaded and hashed from the same bytes
    state = load(raw)
    unknown = set(state) - set(model.state_dict())
    if unknown or (exact and set(state) != set(model.trainable_state())):
        shown = sorted(unknown or set(model.trainable_state()) ^ set(state))[:3]
        raise ValueError(f"{adapter_dir}: adapter weights do not fit this backbone ({shown} ...); "
                         "was it trained with another --backbone?")
    model.load_state_dict(state, strict=False)
    return hashlib.sha256(raw).hexdigest()[:12]


def load_trained(adapter_dir: Path, backbone_dir: Path | None = None) -> tuple[PairClassifier, PairTemplate, Path]:
    """Rebuild the trained classifier (LoRA merged) from an adapter directory; return it, its template and
    the tokenizer file."""
    card = json.loads((adapter_dir / "adapter.json").read_text())
    cfg = TrainConfig(**card["config"])
    kind, path = resolve_backbone(cfg.backbone) if backbone_dir is None else (card["kind"], backbone_dir)
    model = PairClassifier(load_encoder(kind, path), len(card["taxonomy"]), head=cfg.head)
    frozen = check_top_layers(model.encoder, cfg.top_layers) if cfg.top_layers else 0
    model.add_lora(kind, cfg.lora_r, cfg.lora_alpha, cfg.lora_targets, from_layer=frozen)
    load_adapter_weights(model, adapter_dir)
    model.merge_lora()
    model.eval()
    template = PairTemplate(**{k: tuple(v) if isinstance(v, list) else v for k, v in card["template"].items()})
    tokenizer = adapter_dir / "tokenizer.json" if (adapter_dir / "tokenizer.json").exists() else path / "tokenizer.json"
    return model, template, tokenizer

"""Serving: the exported pair classifier under ONNX Runtime, with no torch import.

Providers are chosen automatically (CUDA when ``onnxruntime-gpu`` finds a GPU, else CPU) and the choice
is logged. fp32 and fp16 sort inputs by length and batch them so padding stays small; int8 runs one pair
per call (its activation scales are per call) and, on CPU, as many calls side by side as it has threads.
A pair whose int8 logits are a near tie (top-two margin below the model's ``int8.recheck_margin``) is
recomputed in fp32, one pair per call, so int8 labels stay those of fp32 and never depend on batch mates.
Precision ``auto`` is fp16 on CUDA and int8 on CPU.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from valuedrift.classifier.base import PRECISION_CHOICES
from valuedrift.classifier.encoding import PairEncoder
from valuedrift.classifier.half import FP16_FILE, ensure_fp16
from valuedrift.streams.core.taxonomy import DEFAULT_TAXONOMY, THREE_CLASS_TAXONOMY, Category, Taxonomy

log = logging.getLogger("valuedrift.classifier")

PRECISIONS = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": FP16_FILE}  # file of each precision


def both_runtimes_installed() -> bool:
    """True when onnxruntime and onnxruntime-gpu are both installed: they overwrite one package folder."""
    from importlib import metadata

    found = set()
    for name in ("onnxruntime", "onnxruntime-gpu"):
        try:
            metadata.version(name)
            found.add(name)
        except metadata.PackageNotFoundError:
            pass
    return len(found) == 2


def choose_providers(preferred: str = "auto") -> list[str]:
    """Return the providers to ask for: CUDA first when available (or asked for), always CPU as fallback."""
    if both_runtimes_installed():
        log.warning("onnxruntime and onnxruntime-gpu are both installed and share one package folder; "
                    "uninstall both and reinstall only one (see README, GPU)")
    available = ort.get_available_providers()
    if preferred == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available and preferred in ("auto", "cuda"):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if preferred == "cuda":
        raise RuntimeError("CUDA was asked for but this onnxruntime has no CUDAExecutionProvider; "
                           "install the gpu extra (onnxruntime-gpu) in an environment without onnxruntime")
    return ["CPUExecutionProvider"]


def taxonomy_of(codes: Sequence[str]) -> Taxonomy:
    for t in (DEFAULT_TAXONOMY, THREE_CLASS_TAXONOMY):
        if tuple(codes) == t.codes:
            return t
    return Taxonomy("custom", tuple(Category(c, c, c) for c in codes))


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class OnnxClassifier:
    """The ``Classifier`` protocol over an exported model directory."""

    def __init__(self, model_dir: str | Path, precision: str = "int8", providers: str = "auto",
                 threads: int | None = None, batch_size: int | None = None,
                 recheck_margin: float | None = None) -> None:
        """``recheck_margin``: int8 only; None takes the model's own (``model.json``), 0 turns the recheck off."""
        self.model_dir = Path(model_dir)
        if precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
        providers = choose_providers(providers)
        on_cuda = providers[0] == "CUDAExecutionProvider"
        if precision == "auto":
            precision = "fp16" if on_cuda else "int8"
        self.precision = precision
        path = self.model_dir / PRECISIONS[precision]
        if precision == "fp16" and (self.model_dir / "model.onnx").exists():
            path = ensure_fp16(self.model_dir)
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: is {self.model_dir} an exported valuedrift model "
                                    f"(valuedrift classifier export / build-default)?")
        self.meta = json.loads((self.model_dir / "model.json").read_text())
        self.taxonomy = taxonomy_of(self.meta["taxonomy"])
        # the operating point chosen at export (``classifier export --class-bias``): added to every logit row,
        # before the int8 near-tie check, so the recheck looks at the margins that decide the label
        bias = self.meta.get("class_bias") or {}
        strangers = sorted(set(bias) - set(self.taxonomy.codes))
        if strangers:
            raise ValueError(f"{self.model_dir / 'model.json'}: class_bias names {strangers}, not categories of "
                             f"this model ({', '.join(self.taxonomy.codes)}); re-export it")
        self.class_bias = np.array([float(bias.get(c, 0.0)) for c in self.taxonomy.codes], dtype=np.float32)
        self.version = f"{self.meta['version']}-{precision}"
        # held-out confusion matrix (true x predicted) from the model card, for confusion-corrected entropy
        evaluation = self.meta.get("evaluation") or {}
        card = evaluation.get(f"test_{precision}") or evaluation.get("test_fp32") or evaluation.get("test_int8") or {}
        self.confusion: list[list[float]] | None = card.get("confusion")
        self.encoder = PairEncoder.from_dir(self.model_dir)
        # Dynamic int8 quantises activations with one scale per tensor, i.e. per batch: batched, a pair's
        # label would depend on its batch mates (measured: 1-2 % of labels flip), breaking deterministic
        # replay. So int8 runs one pair per call, unpadded; fp32 and fp16 batch: 32 pairs a call on CPU, 256
        # on CUDA (on an H200, fp16 end to end: 12,300 pairs/s at 256 against 10,000 at 64).
        self.batch_size = batch_size or (1 if precision == "int8" else 256 if on_cuda else 32)
        n = threads or int(os.environ.get("VALUEDRIFT_THREADS", "0")) or min(os.cpu_count() or 1, 4)
        # graph optimisers this int8 recipe runs without (model.json; models exported before it have none)
        unfused = tuple((self.meta.get("int8") or {}).get("disabled_optimizers", ())) if precision == "int8" else ()
        self.session = self._session(path, n, providers, unfused)
        self.providers = self.session.get_providers()
        # One pair per call leaves ONNX Runtime's intra-op threads idle between small operators: on CPU,
        # n calls side by side on one single-threaded session run up to ~1.5x faster than one n-threaded call
        # at a time (2 cores), and each pair's logits stay bit-identical.
        self.pair_workers = n if self.batch_size == 1 and self.providers[0] == "CPUExecutionProvider" else 1
        self._single_threaded = self._session(path, 1, providers, unfused) if self.pair_workers > 1 else None
        # made here, not on first use, so two threads' first calls cannot make two (its threads start lazily)
        self._pool = (ThreadPoolExecutor(self.pair_workers, thread_name_prefix="valuedrift-onnx")
                      if self._single_threaded is not None else None)
        # int8 near ties are recomputed in fp32 (measured: 6 % of validation pairs at the default margin of 0.3
        # logits, taking agreement with fp32 from 98.7 % to 99.8 %; see valuedrift.classifier.smoothing.RECHECK_MARGIN)
        own = float((self.meta.get("int8") or {}).get("recheck_margin", 0.0))
        self.recheck_margin = (own if recheck_margin is None else recheck_margin) if precision == "int8" else 0.0
        self._recheck = None
        if self.recheck_margin > 0 and self.taxonomy.size > 1:
            fp32 = self.model_dir / PRECISIONS["fp32"]
            if not fp32.exists():
                raise FileNotFoundError(f"{fp32} not found: the int8 recheck of near ties needs it beside "
                                        f"{path.name}; re-export the model or pass recheck_margin=0")
            self._recheck = self._session(fp32, 1, providers)  # one thread: the same bits whatever n is
        self.rechecked = 0  # pairs recomputed in fp32 so far (the worker exports it as a metric)
        self._count_lock = threading.Lock()
        log.info("classifier %s on %s (%d threads%s%s)", self.version, self.providers[0], n,
                 f", {self.pair_workers} pairs at a time" if self.pair_workers > 1 else "",
                 f", fp32 recheck below a margin of {self.recheck_margin}" if self._recheck is not None else "")

    @staticmethod
    def _session(path: Path, threads: int, providers: list[str], unfused: Sequence[str] = ()) -> ort.InferenceSession:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers,
                                    disabled_optimizers=list(unfused) or None)

    def _run(self, session: ort.InferenceSession, rows: list[list[int]]) -> np.ndarray:
        ids, mask = self.encoder.pad(rows)
        return session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]

    def _per_pair(self, session: ort.InferenceSession, rows: list[list[int]]) -> np.ndarray:
        """One pair per call, side by side on the pool when there is one: each pair's logits alone."""
        if self._pool is not None and len(rows) > 1:
            return np.concatenate(list(self._pool.map(lambda row: self._run(session, [row]), rows)))
        return np.concatenate([self._run(session, [row]) for row in rows])

    def logits(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        rows = self.encoder.ids_many(prompts, responses)
        out = np.zeros((len(rows), self.taxonomy.size), dtype=np.float32)
        if self._single_threaded is not None and len(rows) > 1:
            out[:] = self._per_pair(self._single_threaded, rows)
        else:
            order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                out[idx] = self._run(self.session, [rows[i] for i in idx])
        out += self.class_bias
        if self._recheck is not None:
            top = np.sort(out, axis=1)
            near = np.flatnonzero(top[:, -1] - top[:, -2] < self.recheck_margin)
            if len(near):
                out[near] = self._per_pair(self._recheck, [rows[i] for i in near]) + self.class_bias
                with self._count_lock:  # logits may be called from several threads at once
                    self.rechecked += len(near)
        return out

    def predict_proba(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        if len(prompts) == 0:
            return np.zeros((0, self.taxonomy.size))
        return softmax(self.logits(prompts, responses).astype(np.float64))

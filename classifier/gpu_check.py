"""GPU check of the classifier: is the CUDA provider really used, how fast are fp32 and fp16, do they agree?

    python -m valuedrift.classifier.gpu_check [--model DIR] [--data FILE.jsonl] [--batches 64,256] [--allow-cpu]

Loads the exported model (the default one unless ``--model``) under onnxruntime-gpu's CUDA provider in fp32
and fp16 and reports, in one JSON object:

- ``session_providers``: what each session's ``get_providers()`` says (CUDA must come first), and
  ``all_nodes_on_cuda``: whether a session with CPU fallback disabled can be built at all;
- ``results``: responses/s per (engine, batch), both end to end (tokenising included, as the worker sees it)
  and model only (pre-padded batches), medians over ``--rounds``; the CPU baselines (int8 as served on
  CPU, fp32 batched) run in the same process, so ``speedup_*_vs_cpu_int8`` are ratios on one machine;
- ``parity``: largest |logit| difference of CUDA fp32 against CPU fp32 and argmax agreement of CUDA fp16
  (and CPU int8) with CPU fp32 on the same pairs; with ``--data`` (labelled JSONL) also each one's accuracy.

Exit status 0 when CUDA ran and parity holds (fp32 logits within 0.02, as TF32 allows, and the same labels
on >= 99.5 % of pairs; fp16 the same labels on >= 99 %), 1 when a check
failed, 2 when onnxruntime has no CUDA provider and ``--allow-cpu`` was not given (with it, the same
report runs on CPU: a dry run of the script). No torch import.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

FP32_TOLERANCE = 0.02  # the CUDA provider's fp32 MatMuls use TF32 by default: 0.0049 measured on an H200
FP32_AGREEMENT = 0.995
FP16_AGREEMENT = 0.99


def _labelled(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    from valuedrift.classifier.datasets import load_jsonl

    examples = load_jsonl(path)
    return [(e.prompt, e.response) for e in examples], [e.label for e in examples]


def _median_rate(run: Any, batches: list[Any], rounds: int, count: int) -> float:
    run(batches[0])  # warm-up: the first call of a shape picks kernels
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for b in batches:
            run(b)
        rates.append(count / (time.perf_counter() - start))
    return round(statistics.median(rates), 1)


def _bench(clf: Any, pairs: list[tuple[str, str]], batch: int, rounds: int) -> dict[str, float]:
    """Responses/s end to end (``clf.logits``) and model only (``session.run`` on pre-padded batches)."""
    chunks = [pairs[s : s + batch] for s in range(0, len(pairs), batch)]
    end_to_end = _median_rate(lambda c: clf.logits([p for p, _ in c], [r for _, r in c]), chunks, rounds, len(pairs))
    rows = sorted(clf.encoder.ids_many([p for p, _ in pairs], [r for _, r in pairs]), key=len)
    padded = [clf.encoder.pad(rows[s : s + batch]) for s in range(0, len(rows), batch)]
    session = clf.session

    def model_only(feed: tuple[np.ndarray, np.ndarray]) -> None:
        session.run(["logits"], {"input_ids": feed[0], "attention_mask": feed[1]})

    out = {"end_to_end_seq_per_s": end_to_end}
    if clf.batch_size > 1:  # int8 runs one pair per call: its end-to-end figure is the served one
        out["model_only_seq_per_s"] = _median_rate(model_only, padded, rounds, len(pairs))
    return out


def _strict_cuda(path: Path) -> bool:
    """Can a session run every node on CUDA? Informative only: ONNX Runtime places small shape arithmetic
    on CPU by design (on the default model: one Memcpy node, measured on an H200)."""
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    opts.log_severity_level = 4
    try:
        ort.InferenceSession(str(path), sess_options=opts, providers=["CUDAExecutionProvider"])
    except Exception:  # noqa: BLE001 - the answer is no
        return False
    return True


def run_check(args: argparse.Namespace) -> dict[str, Any]:
    from valuedrift.classifier.benchmark import realistic_pairs
    from valuedrift.classifier.default_model import model_path
    from valuedrift.classifier.onnx_model import PRECISIONS, OnnxClassifier

    model_dir = model_path(args.model)
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    gpu = "cuda" if cuda else "cpu"
    report: dict[str, Any] = {"onnxruntime": ort.__version__, "device": ort.get_device(),
                              "available_providers": ort.get_available_providers(), "model_dir": str(model_dir)}
    engines = {
        "cuda_fp32": OnnxClassifier(model_dir, "fp32", providers=gpu, batch_size=max(args.batches)),
        "cuda_fp16": OnnxClassifier(model_dir, "fp16", providers=gpu, batch_size=max(args.batches)),
        "cpu_fp32": OnnxClassifier(model_dir, "fp32", providers="cpu", threads=args.cpu_threads, batch_size=64),
        "cpu_int8": OnnxClassifier(model_dir, "int8", providers="cpu", threads=args.cpu_threads),
    }
    report["model_version"] = engines["cuda_fp32"].version.rsplit("-", 1)[0]
    report["session_providers"] = {k: v.providers for k, v in engines.items()}
    if cuda:
        report["all_nodes_on_cuda"] = {p: _strict_cuda(Path(model_dir) / PRECISIONS[p]) for p in ("fp32", "fp16")}
    encoder = engines["cpu_fp32"].encoder
    pairs = realistic_pairs(encoder, args.n)  # for speed: 100-250 tokens, as `classifier bench`
    report["speed_pairs"] = len(pairs)
    rows = encoder.ids_many([p for p, _ in pairs], [r for _, r in pairs])
    report["speed_tokens_mean"] = round(float(np.mean([len(r) for r in rows])), 1)
    checked, labels = _labelled(args.data) if args.data else (pairs, None)
    report["parity_pairs"] = str(args.data or "the speed pairs")

    logits = {k: clf.logits([p for p, _ in checked], [r for _, r in checked]) for k, clf in engines.items()}
    ref = logits["cpu_fp32"]
    parity: dict[str, Any] = {
        "cuda_fp32_max_abs_logit_diff": float(np.abs(logits["cuda_fp32"] - ref).max()),
        "cuda_fp16_max_abs_logit_diff": float(np.abs(logits["cuda_fp16"] - ref).max()),
        **{f"{k}_argmax_agreement_with_cpu_fp32": round(float((v.argmax(1) == ref.argmax(1)).mean()), 4)
           for k, v in logits.items() if k != "cpu_fp32"},
    }
    if labels is not None:
        codes = engines["cpu_fp32"].taxonomy.codes
        truth = np.array([codes.index(label) for label in labels])
        parity["accuracy"] = {k: round(float((v.argmax(1) == truth).mean()), 4) for k, v in logits.items()}
    report["parity"] = parity

    results = []
    cpu_pairs = pairs[: args.cpu_n]
    for name, clf in engines.items():
        on_cpu = name.startswith("cpu")
        for batch in ([64] if on_cpu else args.batches):
            figures = _bench(clf, cpu_pairs if on_cpu else pairs, batch, args.rounds)
            results.append({"engine": name, "batch": 1 if clf.batch_size == 1 else batch, **figures})
    report["results"] = results
    served_cpu = next(r["end_to_end_seq_per_s"] for r in results if r["engine"] == "cpu_int8")
    for r in results:
        if r["engine"].startswith("cuda") and r["batch"] == 64:
            report[f"speedup_{r['engine']}_b64_vs_cpu_int8"] = round(r["end_to_end_seq_per_s"] / served_cpu, 1)
    report["cpu_threads"] = args.cpu_threads

    failures = []
    if cuda and any(engines[k].providers[0] != "CUDAExecutionProvider" for k in ("cuda_fp32", "cuda_fp16")):
        failures.append("a cuda session does not run on CUDAExecutionProvider first")
    if parity["cuda_fp32_max_abs_logit_diff"] > FP32_TOLERANCE:
        failures.append(f"fp32 logits on the GPU differ from CPU by more than {FP32_TOLERANCE}")
    if parity["cuda_fp32_argmax_agreement_with_cpu_fp32"] < FP32_AGREEMENT:
        failures.append(f"fp32 on the GPU agrees with CPU on fewer than {FP32_AGREEMENT:.1%} of labels")
    if parity["cuda_fp16_argmax_agreement_with_cpu_fp32"] < FP16_AGREEMENT:
        failures.append(f"fp16 agrees with fp32 on fewer than {FP16_AGREEMENT:.0%} of labels")
    report["failures"] = failures
    report["ok"] = not failures
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="default | accurate | exported model directory [default]")
    ap.add_argument("--data", type=Path, default=None, help="labelled JSONL: parity and accuracy on its pairs")
    ap.add_argument("--n", type=int, default=2048, help="realistic pairs when there is no --data [2048]")
    ap.add_argument("--batches", default="64,256", help="GPU batch sizes [64,256]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu-n", type=int, default=256, help="pairs for the CPU baselines [256]")
    ap.add_argument("--cpu-threads", type=int, default=4, help="threads of the CPU baselines [4]")
    ap.add_argument("--allow-cpu", action="store_true", help="without a CUDA provider, run the report on CPU")
    args = ap.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        ap.error(f"--batches must be comma-separated integers, got {args.batches!r}")
    if "CUDAExecutionProvider" not in ort.get_available_providers() and not args.allow_cpu:
        print(json.dumps({"onnxruntime": ort.__version__, "available_providers": ort.get_available_providers(),
                          "error": "no CUDAExecutionProvider: install onnxruntime-gpu (make gpu-venv)"}))
        return 2
    try:
        report = run_check(args)
    except (FileNotFoundError, RuntimeError, ValueError) as err:  # a model that is not there or cannot be built
        print(json.dumps({"model": str(args.model), "error": str(err)}))
        return 2
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

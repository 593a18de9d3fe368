"""``valuedrift classifier bench``: the same model, inputs and threads under torch eager, ONNX fp32 and ONNX int8.

Inputs are realistic pairs of 100–250 tokens (XSTest completions when the shared data is present, the
demo corpus otherwise). The torch baseline is the plain transformers way: the encoder loaded with
``AutoModel`` plus the same pooling and head, in eager mode, under ``torch.inference_mode``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
from valuedrift.classifier.datasets import Example

BATCHES = (1, 8, 32)


def realistic_pairs(encoder: Any, n: int) -> list[tuple[str, str]]:
    pool: list[Example] = []
    try:
        from valuedrift.classifier import xstest
        from valuedrift.classifier.training_data import shared_data_dir

        pool = xstest.examples(shared_data_dir())
    except FileNotFoundError:
        pass
    if not pool:
        from valuedrift.classifier.corpus import demo_corpus

        pool = demo_corpus()
    rows = encoder.ids_many([e.prompt for e in pool], [e.response for e in pool])
    sized = [(e.prompt, e.response) for e, row in zip(pool, rows, strict=True) if 100 <= len(row) <= 250]
    if not sized:
        sized = [(e.prompt, e.response * 4) for e in pool]
    return [sized[i % len(sized)] for i in range(n)]


def _rate(fn: Any, pairs: list[tuple[str, str]], batch: int) -> float:
    fn(pairs[:batch])  # warm-up
    start = time.perf_counter()
    for s in range(0, len(pairs), batch):
        fn(pairs[s : s + batch])
    return len(pairs) / (time.perf_counter() - start)


def run_bench(threads: int = 2, n: int = 64, rounds: int = 3, model: str = "default") -> dict[str, Any]:
    """``model``: a shipped classifier's name (``default`` or ``accurate``): torch eager needs its weights."""
    import torch
    from valuedrift.classifier.default_model import ensure_model, weights_dir
    from valuedrift.classifier.onnx_model import OnnxClassifier
    from valuedrift.classifier.train import load_trained

    torch.set_num_threads(threads)
    model_dir = ensure_model(model)
    engines = {"onnx_fp32": OnnxClassifier(model_dir, "fp32", threads=threads, batch_size=64),
               "onnx_int8": OnnxClassifier(model_dir, "int8", threads=threads)}  # one pair per run, as served
    torch_model, _, _ = load_trained(weights_dir(model))
    enc = engines["onnx_fp32"].encoder
    pairs = realistic_pairs(enc, n)

    def torch_run(batch: list[tuple[str, str]]) -> np.ndarray:
        ids, mask = enc.encode([p for p, _ in batch], [r for _, r in batch])
        with torch.inference_mode():
            return torch_model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

    def onnx_run(engine: OnnxClassifier):  # noqa: ANN202
        return lambda batch: engine.logits([p for p, _ in batch], [r for _, r in batch])

    fns = {"torch_eager": torch_run, **{k: onnx_run(v) for k, v in engines.items()}}
    # Engines take turns, round after round, and each (engine, batch) reports its median: on shared CPUs
    # whose speed drifts by ±20 % within minutes, one pass would compare engines measured at different speeds.
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for engine, fn in fns.items():
            for b in BATCHES:
                rates.setdefault((engine, b), []).append(_rate(fn, pairs, b))
    results = [{"engine": e, "batch": b, "seq_per_s": round(statistics.median(v), 2)} for (e, b), v in rates.items()]
    at8 = {r["engine"]: r["seq_per_s"] for r in results if r["batch"] == 8}
    prompts, responses = [p for p, _ in pairs], [r for _, r in pairs]
    lengths = [len(row) for row in enc.ids_many(prompts, responses)]
    int8, before = engines["onnx_int8"], engines["onnx_int8"].rechecked
    int8.logits(prompts, responses)  # how many of these pairs the int8 engine rechecks
    return {"results": results, "speedup_int8_vs_torch": round(at8["onnx_int8"] / at8["torch_eager"], 2),
            "threads": threads, "n": n, "rounds": rounds, "tokens_mean": round(float(np.mean(lengths)), 1),
            "providers": int8.providers, "model": model, "version": int8.version,
            "int8_rechecked_share": round((int8.rechecked - before) / len(pairs), 3)}

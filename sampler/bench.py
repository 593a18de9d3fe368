"""Throughput of the hf backend: responses/s and generated tokens/s at k = 1, 10, 100 on the current device.

End-of-sequence is suppressed so every response has exactly ``max_new_tokens`` tokens (the numbers then
compare across models and runs). Without ``model_dir`` the tiny random model (``valuedrift.sampler.tiny``) is built
into a temporary directory.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from valuedrift.streams.core.records import ProbeRequest

PROMPT = "Explain, step by step, how to reset a forgotten password on a home router."


async def measure(backend: Any, ks: Sequence[int], max_new_tokens: int, min_seconds: float,
                  prompt: str = PROMPT) -> list[dict[str, Any]]:
    """Time one seeded request per repeat at each k (after a warm-up); repeat until ``min_seconds``."""
    warm = ProbeRequest(id="warm", monitor_key="bench", step=0, prompt=prompt, k=min(ks), seed=0,
                        max_new_tokens=max_new_tokens)
    await backend.generate(warm)
    out = []
    for k in ks:
        responses = tokens = reps = 0
        batches0 = getattr(backend, "micro_batches", 0)
        t0 = time.perf_counter()
        while True:
            req = ProbeRequest(id=f"bench-{k}-{reps}", monitor_key="bench", step=0, prompt=prompt, k=k,
                               temperature=0.7, seed=reps, max_new_tokens=max_new_tokens)
            gen = await backend.generate(req)
            responses += len(gen.samples)
            tokens += gen.tokens or 0
            reps += 1
            dt = time.perf_counter() - t0
            if dt >= min_seconds:
                break
        out.append({"k": k, "requests": reps, "responses": responses, "tokens": tokens, "seconds": round(dt, 4),
                    "responses_per_s": round(responses / dt, 2), "tokens_per_s": round(tokens / dt, 1),
                    "micro_batches": getattr(backend, "micro_batches", 0) - batches0})
    return out


def run_bench(model_dir: Path | str | None = None, *, ks: Sequence[int] = (1, 10, 100), max_new_tokens: int = 32,
              device: str = "auto", dtype: str = "auto", min_seconds: float = 1.0, threads: int | None = None,
              max_batch_rows: int | None = None) -> dict[str, Any]:
    from valuedrift.sampler.backends import HFBackend

    with tempfile.TemporaryDirectory(prefix="valuedrift-tiny-") as tmp:
        if model_dir is None:
            from valuedrift.sampler.tiny import build_tiny_model

            model_dir = build_tiny_model(Path(tmp) / "tiny")
            name = "tiny (random GPT-2, 2 layers, d=64, vocab 512)"
        else:
            name = str(model_dir)
        backend = HFBackend(model_dir, device=device, dtype=dtype, ignore_eos=True, batch_wait=0.0, threads=threads,
                            max_batch_rows=max_batch_rows)

        async def go() -> list[dict[str, Any]]:
            await backend.start()
            try:
                return await measure(backend, ks, max_new_tokens, min_seconds)
            finally:
                await backend.close()

        results = asyncio.run(go())
    import torch

    dev = backend.device
    return {"backend": "hf", "model": name, "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "dtype": str(backend.dtype).removeprefix("torch."), "threads": torch.get_num_threads(),
            "max_new_tokens": max_new_tokens, "max_batch_rows": backend.max_rows, "results": results}

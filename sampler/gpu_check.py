"""GPU check of the hf backend: CUDA generation with k = 100 in bf16, seeded repeatability, packing, speed.

    python -m valuedrift.sampler.gpu_check [--model DIR] [--k 100] [--dtype bfloat16] [--layers 4 --width 256]
        [--allow-cpu]

Builds a random GPT-2-style model (4 layers, width 256 by default; ``--layers 12 --width 768`` is GPT-2
small's shape) unless ``--model`` names a local directory; prints one JSON object and exits
0 when every check passed (1 otherwise, 2 when there is no CUDA device and ``--allow-cpu`` was not given).
Designed to finish well under 5 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from valuedrift.streams.core.records import ProbeRequest


async def _checks(backend: Any, k: int, max_new_tokens: int) -> dict[str, Any]:
    from valuedrift.sampler.bench import measure

    req = ProbeRequest(id="gpu-check", monitor_key="gpu", step=0, prompt="Tell me about the sea.", k=k,
                       temperature=0.7, seed=1234, max_new_tokens=max_new_tokens)
    other = ProbeRequest(id="other", monitor_key="gpu", step=0,
                         messages=[{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": "A much longer prompt, to change the padding " * 3}],
                         k=37, temperature=1.0, top_p=0.9, seed=99, max_new_tokens=max_new_tokens // 2)
    t0 = time.perf_counter()
    first = await backend.generate(req)
    t_first = time.perf_counter() - t0
    again = await backend.generate(req)
    packed, _ = await asyncio.gather(backend.generate(req), backend.generate(other))
    a, b, c = ([s.text for s in g.samples] for g in (first, again, packed))
    backend.ignore_eos = True  # fixed-length responses for the speed figure
    speed = await measure(backend, [k], max_new_tokens, min_seconds=2.0)
    return {
        "k": k, "responses": len(a), "distinct_responses": len(set(a)), "first_request_seconds": round(t_first, 3),
        "repeat_identical": a == b,
        "packed_identical_fraction": sum(x == y for x, y in zip(a, c, strict=True)) / len(a),
        "speed": speed[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="local model directory [the tiny random model]")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--layers", type=int, default=4, help="layers of the random model [4]")
    ap.add_argument("--width", type=int, default=256, help="hidden size of the random model, heads of 64 [256]")
    ap.add_argument("--allow-cpu", action="store_true", help="run on CPU when there is no GPU (float32)")
    args = ap.parse_args(argv)
    if args.layers < 1 or args.width < 64 or args.width % 64:
        ap.error(f"--layers must be >= 1 and --width a multiple of 64, got {args.layers} and {args.width}")

    import torch
    from valuedrift.sampler.backends import HFBackend

    report: dict[str, Any] = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if not torch.cuda.is_available() and not args.allow_cpu:
        report["error"] = "no CUDA device"
        print(json.dumps(report))
        return 2
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = args.dtype if device == "cuda" else "float32"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="valuedrift-gpu-check-") as tmp:
        model = args.model
        if model is None:
            from valuedrift.sampler.tiny import build_tiny_model

            model = build_tiny_model(Path(tmp) / "tiny", n_layer=args.layers, n_embd=args.width,
                                     n_head=args.width // 64)
        backend = HFBackend(model, device=device, dtype=dtype, batch_wait=0.05)

        async def go() -> dict[str, Any]:
            await backend.start()
            try:
                return await _checks(backend, args.k, args.max_new_tokens)
            finally:
                await backend.close()

        try:
            report.update(asyncio.run(go()))
        except Exception as err:  # noqa: BLE001 - reported in the JSON
            report["error"] = f"{err.__class__.__name__}: {err}"
    report.update(device=device, device_name=torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                  dtype=dtype, model=str(args.model or f"random GPT-2, {args.layers} layers, d={args.width}"),
                  total_seconds=round(time.perf_counter() - t0, 2))
    if device == "cuda":
        report["max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    ok = "error" not in report and report.get("repeat_identical") and report.get("responses") == args.k
    report["ok"] = bool(ok)
    print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

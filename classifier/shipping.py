"""Turn a trained adapter folder into shipped weights: ``classifier/weights/<name>``.

Only what a build needs is copied (``adapter.json`` and ``adapter.safetensors``; not the checkpoint, not a
tokenizer the backbone already has); an ``evaluation.json`` already there described other weights and is removed
(``classifier card`` writes the new one). ``half=True`` stores the floating tensors (LoRA factors, head) as fp16,
which halves the file: a larger backbone's adapter then stays under the repository's 5 MB a file. Loading casts
them back to the model's fp32, so the export's fp32 parity with torch is unchanged; what fp16 storage costs is
measured with ``classifier compare`` between the two (label agreement).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from valuedrift.classifier.default_model import WEIGHT_FILES


def ship_adapter(src: Path, dst: Path, half: bool = False) -> dict[str, Any]:
    """Copy the adapter in ``src`` to ``dst`` (fp16 tensors if ``half``); return a summary.

    Raises ValueError when ``src`` is not an adapter folder written by ``classifier train``.
    """
    from safetensors.torch import load_file, save_file

    missing = [f for f in WEIGHT_FILES if not (src / f).is_file()]
    if missing:
        raise ValueError(f"{src} has no {', '.join(missing)}: pass a folder written by `classifier train`")
    state = load_file(str(src / "adapter.safetensors"))
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    card = json.loads((src / "adapter.json").read_text())
    card["stored_dtype"] = "float16" if half else "as trained"
    dst.mkdir(parents=True, exist_ok=True)
    tmp = dst / "adapter.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    tmp.chmod(0o644)  # the writer makes it private; shipped weights are read by whoever runs the package
    tmp.replace(dst / "adapter.safetensors")
    (dst / "adapter.json").write_text(json.dumps(card, indent=2) + "\n")
    stale = dst / "evaluation.json"  # another model's card: `classifier card` writes this one's
    if stale.exists():
        stale.unlink()
    tokenizer = src / "tokenizer.json"
    if tokenizer.is_file() and card.get("backbone") not in ("minilm", "mpnet"):  # the shipped backbones have theirs
        shutil.copy(tokenizer, dst / "tokenizer.json")
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in state.values()})
    return {"out": str(dst), "bytes": (dst / "adapter.safetensors").stat().st_size, "tensors": len(state),
            "dtypes": dtypes}

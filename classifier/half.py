"""fp16 for GPUs: ``model.fp16.onnx``, converted from an exported model's ``model.onnx`` on first use.

Inputs (token ids, mask) and the logits output stay as they are; weights and activations inside are fp16,
which is what the CUDA provider runs fastest (measured in the README, GPU section). The conversion needs
the ``onnx`` package (in the ``gpu`` and ``train`` extras) and takes about a second; the file is written
beside ``model.onnx`` atomically, so concurrent workers never read half a file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("valuedrift.classifier")

FP16_FILE = "model.fp16.onnx"


def ensure_fp16(model_dir: Path | str) -> Path:
    """Return ``model_dir/model.fp16.onnx``, converting ``model.onnx`` first if it is missing."""
    model_dir = Path(model_dir)
    dst = model_dir / FP16_FILE
    if dst.exists():
        return dst
    src = model_dir / "model.onnx"
    if not src.exists():
        raise FileNotFoundError(f"{src} not found: fp16 is converted from an exported fp32 model "
                                f"(valuedrift classifier export / build-default)")
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as err:
        raise RuntimeError(f"fp16 needs the onnx package to convert {src} once ({err}); "
                           "install the gpu extra, or use precision fp32/int8") from err
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=".fp16-", suffix=".onnx")
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("converted %s to fp16 (%s)", src, dst)
    return dst

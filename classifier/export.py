"""Export a trained pair classifier to ONNX (fp32) and int8 (dynamic and per-token), with what serving needs beside it.

``torch.onnx.export`` (legacy exporter, opset 17, dynamic batch and sequence axes) is used for every
backbone: optimum-onnx 0.1.0 pins transformers < 4.58 and refuses T5 for text classification, and
one exporter for both keeps the graphs alike.

An exported model directory holds ``model.onnx``, ``model.int8.onnx``, ``tokenizer.json``,
``template.json`` and ``model.json`` (taxonomy, version, card).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from valuedrift.classifier.encoding import PairEncoder, PairTemplate
from valuedrift.classifier.model import PairClassifier
from valuedrift.classifier.smoothing import (
    INT8_UNFUSED,
    RECHECK_MARGIN,
    RECIPE,
    activation_maxima,
    smooth,
    weight_matmuls,
)


class _Exportable(torch.nn.Module):
    def __init__(self, model: PairClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask)


def export(model: PairClassifier, template: PairTemplate, tokenizer_file: Path, out_dir: Path,
           card: dict[str, Any], int8: bool = True, calibration: Sequence[tuple[str, str]] | None = None) -> Path:
    """Write the ONNX model(s) and their metadata into ``out_dir``; return it.

    ``calibration``: (prompt, response) pairs for the int8 smoothing; default the shipped demo corpus.
    ``card["class_bias"]``, if any ({code: b}), is added to the served logits (``OnnxClassifier``) and
    hashed into the version.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapper = _Exportable(model).eval()  # the legacy exporter restores the wrapper's mode: it must be eval
    ids = torch.tensor([[*template.prefix, 5, 6, 7, *template.middle, 8, 9, *template.suffix]] * 2)
    mask = torch.ones_like(ids)
    onnx_path = out_dir / "model.onnx"
    torch.onnx.export(
        wrapper, (ids, mask), str(onnx_path), input_names=["input_ids", "attention_mask"], output_names=["logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                      "logits": {0: "batch"}},
        opset_version=17, dynamo=False,
    )
    shutil.copy(tokenizer_file, out_dir / "tokenizer.json")
    template.save(out_dir / "template.json")
    served = hashlib.sha256(onnx_path.read_bytes())
    digest = served.hexdigest()[:12]
    extra: dict[str, Any] = {}
    if int8:
        pairs = calibration or shipped_calibration_pairs()
        quantize_int8(onnx_path, out_dir / "model.int8.onnx", calibration_feeds(PairEncoder.from_dir(out_dir), pairs))
        extra["int8"] = {"recipe": RECIPE, "recheck_margin": RECHECK_MARGIN, "calibration_pairs": len(pairs),
                         "calibration": "given" if calibration else "shipped demo corpus",
                         "disabled_optimizers": list(INT8_UNFUSED)}
        # the version names what is served: a new int8 recipe or calibration set changes it too (their inputs
        # are hashed, not the int8 bytes, which move with the last bits of the calibration run on another CPU)
        served.update(json.dumps([RECIPE, pairs]).encode())
    if card.get("class_bias"):  # a different operating point labels differently: another version
        served.update(json.dumps(sorted(card["class_bias"].items())).encode())
    meta = {**card, "version": f"{card.get('name', 'pair-classifier')}-{served.hexdigest()[:12]}",
            "onnx_sha256_12": digest, **extra}
    (out_dir / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir


def quantize_int8(src: Path, dst: Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> None:
    """Smooth (``valuedrift.classifier.smoothing``, calibrated on ``feeds``), then int8 every linear layer but two.

    - Query/key/value, attention output and FFN input projections: ONNX Runtime's per-channel dynamic int8
      (one activation scale per call).
    - FFN down-projections (weights with more rows than columns whose output is the hidden width): per-token
      int8 activations (``valuedrift.classifier.pertoken``). Their input, the GELU output, has a few tokens with large
      values that one scale per call cannot serve, whatever the smoothing. The first layer's stays fp32: on
      the default model's 1,151 validation pairs (argmax agreement with fp32, one pair per call, no recheck),
      all six per-token agree on 97.65 %, all but the first on 98.70 %, all but any other on 97.4-97.7 %,
      and all six fp32 (the previous recipe) on 98.78 %, 1.2-1.3x slower.
    - The head stays fp32 (5 outputs: nothing to gain). The activation x activation MatMuls of attention stay
      fp32 (``MatMulConstBOnly``), which is also faster.

    Static (calibrated QDQ) quantisation was worse (93 %); no smoothing, 95.8 %.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from valuedrift.classifier.pertoken import per_token_int8

    model = onnx.load(str(src))
    smoothed = smooth(model, activation_maxima(model, feeds))
    linear = weight_matmuls(smoothed)
    dims = {i.name: tuple(i.dims) for i in smoothed.graph.initializer}
    hidden = dims[linear[0].input[1]][0]  # the first linear layer reads the embeddings
    # not quantised dynamically: weights with more rows (inputs) than columns (outputs): down-projections, head
    keep = [n for n in linear if len(d := dims[n.input[1]]) == 2 and d[0] > d[1]]
    down = [n.name for n in keep if dims[n.input[1]][1] == hidden]
    tmp = dst.with_name(dst.name + ".smoothed.onnx")
    onnx.save(smoothed, str(tmp))
    quiet = _Without("pre-processing before quantization")  # ORT's generic advice, printed on every call
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(str(tmp), str(dst), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=[n.name for n in keep],
                         extra_options={"MatMulConstBOnly": True})
    finally:
        logging.getLogger().removeFilter(quiet)
        tmp.unlink(missing_ok=True)
    onnx.save(per_token_int8(onnx.load(str(dst)), down[1:]), str(dst))


class _Without(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def calibration_feeds(encoder: PairEncoder, pairs: Sequence[tuple[str, str]]) -> list[dict[str, np.ndarray]]:
    """One feed per (prompt, response) pair, as the served int8 model sees them (one pair per call)."""
    rows = encoder.ids_many([p for p, _ in pairs], [r for _, r in pairs])
    return [dict(zip(("input_ids", "attention_mask"), encoder.pad([row]), strict=True)) for row in rows]


def shipped_calibration_pairs() -> list[tuple[str, str]]:
    """The demo corpus (150 pairs written for the project, 30 per category): the default calibration set."""
    from valuedrift.classifier.corpus import demo_corpus

    return [(e.prompt, e.response) for e in demo_corpus()]

"""Pick a classifier by name: ``default`` (the learned ONNX model), ``rules``, ``null`` (free, for benchmarks),
or an exported model directory."""

from __future__ import annotations

from pathlib import Path

from valuedrift.classifier.base import Classifier
from valuedrift.classifier.rules import RuleClassifier

CHOICES = ("default", "rules", "null", "<exported model directory>")


def load_classifier(spec: str, precision: str = "auto") -> Classifier:
    """Return the classifier named by ``spec``; raise ValueError naming the choices when unknown.

    ``precision`` applies to ONNX models: ``auto`` (fp16 on CUDA, int8 on CPU), ``int8``, ``fp16`` or ``fp32``.

    >>> load_classifier("rules").version
    'rules-1'
    """
    if spec == "rules":
        return RuleClassifier()
    if spec == "null":
        from valuedrift.classifier.null import NullClassifier

        return NullClassifier()
    from valuedrift.classifier.onnx_model import OnnxClassifier

    if spec == "default":
        from valuedrift.classifier.default_model import ensure_default_model

        return OnnxClassifier(ensure_default_model(), precision=precision)
    path = Path(spec)
    if path.is_dir() and (path / "model.json").exists():
        return OnnxClassifier(path, precision=precision)
    raise ValueError(f"unknown classifier {spec!r}; use one of: {', '.join(CHOICES)}")

"""Pick a classifier by name: ``default`` (the learned ONNX model, fast on CPU), ``accurate`` (the larger one,
after ``make accurate``), ``rules``, ``null`` (free, for benchmarks), or an exported model directory."""

from __future__ import annotations

from valuedrift.classifier.base import Classifier
from valuedrift.classifier.rules import RuleClassifier

CHOICES = ("default", "accurate", "rules", "null", "<exported model directory>")


def load_classifier(spec: str, precision: str = "auto", batch_size: int = 0) -> Classifier:
    """Return the classifier named by ``spec``; raise ValueError naming the choices when unknown.

    ``precision`` and ``batch_size`` apply to ONNX models: ``precision`` is ``auto`` (fp16 on CUDA, int8 on CPU),
    ``int8``, ``fp16`` or ``fp32``; ``batch_size`` is the most pairs per inference call (0: the precision's own,
    see ``OnnxClassifier``).

    >>> load_classifier("rules").version
    'rules-1'
    """
    if batch_size < 0:
        raise ValueError(f"the inference batch size must be >= 0 pairs (0 = the classifier's choice), got {batch_size}")
    if spec == "rules":
        return RuleClassifier()
    if spec == "null":
        from valuedrift.classifier.null import NullClassifier

        return NullClassifier()
    from valuedrift.classifier.default_model import model_path
    from valuedrift.classifier.onnx_model import OnnxClassifier

    path = model_path(spec)  # a shipped model is built first
    if (path / "model.json").exists():
        return OnnxClassifier(path, precision=precision, batch_size=batch_size or None)
    raise ValueError(f"unknown classifier {spec!r}; use one of: {', '.join(CHOICES)}")

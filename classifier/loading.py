"""Pick a classifier by name: ``default``, ``rules``, or a directory holding an exported ONNX model."""

from __future__ import annotations

from classifier.base import Classifier
from classifier.rules import RuleClassifier

CHOICES = ("default", "rules")


def load_classifier(spec: str) -> Classifier:
    """Return the classifier named by ``spec``; raise ValueError naming the choices when unknown.

    ``default`` is the rule baseline until the learned ONNX model is built.

    >>> load_classifier("rules").version
    'rules-1'
    """
    if spec in ("default", "rules"):
        return RuleClassifier()
    raise ValueError(f"unknown classifier {spec!r}; use one of: {', '.join(CHOICES)}")

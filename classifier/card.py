"""The evaluation part of a model card (``classifier/weights/default/evaluation.json``), rebuilt by one command.

``valuedrift classifier card --data DIR --model DIR --out FILE`` scores the exported model on the
validation and test splits written by ``valuedrift classifier prepare`` (int8 as served, and fp32), the
keyword-rules baseline on the test split, and puts the human ceilings beside them: the two XSTest
annotators' κ (from its CSVs) and the κ between two independent annotations of the same hh-rlhf turns
(``classifier/labels``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuedrift.classifier.datasets import load_jsonl
from valuedrift.classifier.evaluation import evaluate
from valuedrift.classifier.metrics import cohen_kappa
from valuedrift.classifier.smoothing import ALPHA, RECHECK_MARGIN, RECIPE
from valuedrift.classifier.splits import FRACTIONS
from valuedrift.classifier.training_data import SEED, hh_labels
from valuedrift.streams.core.taxonomy import DEFAULT_TAXONOMY

SPLIT = {"method": f"hash of the prompt (and conversation for hh-rlhf), seed {SEED}", "fractions": list(FRACTIONS),
         "command": "valuedrift classifier prepare --out DIR; valuedrift classifier evaluate --data DIR/test.jsonl "
                    "--json"}
INT8 = (f"{RECIPE}: SmoothQuant-style smoothing (alpha {ALPHA}, calibrated on the demo corpus), then per-channel "
        "dynamic int8 of the attention and FFN input projections and per-token int8 of the FFN down-projections "
        "but the first layer's (fp32, as is the head); one pair per run; pairs whose int8 top-two logit margin is "
        f"below {RECHECK_MARGIN} are recomputed in fp32; ONNX Runtime serves it without its SkipLayerNormalization "
        "fusion (faster here)")


# Source -> (committed labels, a blind second annotation of some of the same items), in classifier/labels.
ANNOTATIONS = {"hh-rlhf": ("hh_rlhf_labels.jsonl", "hh_rlhf_second_annotation.jsonl"),
               "hh-helpful": ("hh_helpful_labels.jsonl", "hh_helpful_second_annotation.jsonl"),
               "jailbreakbench": ("jailbreakbench_labels.jsonl", "jailbreakbench_second_annotation.jsonl")}


def annotator_agreement(source: str = "hh-rlhf") -> dict[str, Any]:
    """Agreement and Cohen's κ between a source's committed labels and a second, blind annotation.

    >>> r = annotator_agreement("hh-rlhf")
    >>> r["n"] > 100 and 0.0 < r["cohen_kappa"] <= 1.0
    True
    >>> annotator_agreement("jailbreakbench")["n"]
    60
    """
    if source not in ANNOTATIONS:
        raise ValueError(f"no second annotation of {source!r}: choose one of {sorted(ANNOTATIONS)}")
    first, second = (hh_labels(name) for name in ANNOTATIONS[source])
    ids = sorted(set(first) & set(second))
    a, b = [first[i] for i in ids], [second[i] for i in ids]
    return {"n": len(ids), "agreement": round(sum(x == y for x, y in zip(a, b, strict=True)) / len(ids), 4),
            "cohen_kappa": round(cohen_kappa(a, b, DEFAULT_TAXONOMY.codes), 4),
            "note": f"two independent annotations of the same {source} items under classifier/labels/RUBRIC.md"}


def hh_annotator_agreement() -> dict[str, Any]:
    """The hh-rlhf red-team turns' agreement (``annotator_agreement("hh-rlhf")``)."""
    return annotator_agreement("hh-rlhf")


def xstest_annotator_agreement(data_dir: Path) -> dict[str, Any]:
    from valuedrift.classifier import xstest

    a, b = xstest.human_labels(data_dir)
    return {"cohen_kappa": round(cohen_kappa(a, b, DEFAULT_TAXONOMY.codes), 4),
            "note": "agreement of the two XSTest annotators' labels (its CSVs) on all completions, for scale"}


def build_card(model_dir: Path, data_dir: Path, shared_data: Path) -> dict[str, Any]:
    """Score the model in ``model_dir`` on ``data_dir/{val,test}.jsonl``; return the card's evaluation part."""
    from valuedrift.classifier.onnx_model import OnnxClassifier
    from valuedrift.classifier.rules import RuleClassifier

    val, test = load_jsonl(data_dir / "val.jsonl"), load_jsonl(data_dir / "test.jsonl")
    int8, fp32 = OnnxClassifier(model_dir, "int8"), OnnxClassifier(model_dir, "fp32")
    rules = evaluate(RuleClassifier(), test)[0]
    return {
        "split": SPLIT,
        "test_int8": evaluate(int8, test)[0],
        "test_fp32": evaluate(fp32, test)[0],
        "val_int8": evaluate(int8, val)[0],
        "rules_baseline_test": {k: rules[k] for k in ("n", "accuracy", "macro_f1", "cohen_kappa", "accuracy_3class")},
        "human_agreement_xstest": xstest_annotator_agreement(shared_data),
        "human_agreement_hh_rlhf": hh_annotator_agreement(),
        "human_agreement_hh_helpful": annotator_agreement("hh-helpful"),
        "human_agreement_jailbreakbench": annotator_agreement("jailbreakbench"),
        "int8": INT8,
    }

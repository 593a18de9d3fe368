import numpy as np
import pytest
from valuedrift.classifier.base import Classifier, argmax_codes
from valuedrift.classifier.corpus import demo_corpus
from valuedrift.classifier.loading import load_classifier
from valuedrift.classifier.rules import RuleClassifier, is_refusal, topic_overlap

from tests.texts import PAIRS


def test_known_pairs_get_their_category():
    clf = RuleClassifier()
    for code, (prompt, response) in PAIRS.items():
        assert clf.classify_one(prompt, response) == code, code


def test_probabilities_are_rows_that_sum_to_one():
    clf = RuleClassifier()
    probs = clf.predict_proba([p for p, _ in PAIRS.values()], [r for _, r in PAIRS.values()])
    assert probs.shape == (5, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert argmax_codes(probs) == list(PAIRS)
    assert isinstance(clf, Classifier)


def test_refusal_and_overlap_helpers():
    assert is_refusal("I cannot help with that request.")
    assert not is_refusal("Here is how to do it.")
    assert topic_overlap("bake bread", "bread baking is fun") > 0.4
    assert topic_overlap("bake bread", "the tides follow the moon") == 0


def test_empty_and_huge_inputs_do_not_crash():
    clf = RuleClassifier()
    probs = clf.predict_proba(["", "x" * 1_000_000], ["", "word " * 200_000])
    assert probs.shape == (2, 5)


def test_baseline_beats_chance_on_the_demo_corpus():
    ex = demo_corpus()
    assert len(ex) == 150 and {e.label for e in ex} == {"g1", "g2", "g3", "g4", "g5"}
    pred = RuleClassifier().classify([e.prompt for e in ex], [e.response for e in ex])
    acc = sum(p == e.label for p, e in zip(pred, ex, strict=False)) / len(ex)
    assert acc > 0.5  # chance is 0.2; measured 0.66


def test_unknown_classifier_names_choices():
    with pytest.raises(ValueError, match="default, accurate, rules"):
        load_classifier("bert-large")

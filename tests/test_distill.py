"""Distillation: the loss, the unlabelled pool (training side only), a student trained on a real exported teacher,
and the one-line errors of the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is installed by make test")

from valuedrift.classifier.corpus import demo_corpus  # noqa: E402
from valuedrift.classifier.datasets import write_jsonl  # noqa: E402
from valuedrift.classifier.distill import (  # noqa: E402
    UNLABELLED,
    cached_teacher,
    off_topic_pairs,
    read_unlabelled,
    unlabelled_pairs,
    write_unlabelled,
)
from valuedrift.classifier.splits import FRACTIONS, assign  # noqa: E402
from valuedrift.classifier.train import TrainConfig, distillation_loss, train  # noqa: E402

from tests.tiny_models import tiny_mpnet  # noqa: E402


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "valuedrift.ops.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_the_loss_mixes_cross_entropy_on_labels_and_kl_to_the_teacher():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    gold = torch.tensor([0, 1, -100, 3, -100, 4])
    soft = torch.softmax(torch.randn(6, 5), dim=1)
    ce = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0]))
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits, 1), soft, reduction="batchmean")
    assert torch.allclose(distillation_loss(logits, gold, soft, ce, 0.0), ce(logits, gold))  # unlabelled ignored
    assert torch.allclose(distillation_loss(logits, gold, soft, ce, 1.0), kl)
    assert torch.allclose(distillation_loss(logits, gold, soft, ce, 0.25), 0.75 * ce(logits, gold) + 0.25 * kl)
    none = torch.full((6,), -100)
    assert torch.allclose(distillation_loss(logits, none, soft, ce, 0.5), 0.5 * kl)  # a batch of unlabelled only
    assert kl.item() > 0 and distillation_loss(torch.log(soft), none, soft, ce, 1.0).abs().item() < 1e-6


def test_a_balanced_kl_weighs_each_pair_by_its_class_weight_under_the_teacher():
    torch.manual_seed(1)
    logits = torch.randn(4, 5)
    soft = torch.eye(5)[[0, 0, 0, 1]] * 0.96 + 0.01  # three pairs the teacher calls g1, one g2
    ce = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 2.0, 1.0, 1.0, 1.0]))
    per_pair = (soft * (soft.log() - torch.log_softmax(logits, 1))).sum(1)
    w = soft @ ce.weight
    none = torch.full((4,), -100)
    balanced = distillation_loss(logits, none, soft, ce, 1.0, balanced=True)
    assert torch.allclose(balanced, (w * per_pair).sum() / w.sum())
    assert torch.allclose(distillation_loss(logits, none, soft, ce, 1.0), per_pair.mean())  # unbalanced
    # the g2 pair counts about four times a g1 pair: its share of the loss rises from 1/4
    assert (w[3] * per_pair[3] / (w * per_pair).sum()) > per_pair[3] / per_pair.sum()
    flat = torch.nn.CrossEntropyLoss(weight=torch.ones(5))
    assert torch.allclose(distillation_loss(logits, none, soft, flat, 1.0, balanced=True), per_pair.mean())


def test_the_unlabelled_pool_comes_from_training_dialogues_only():
    from valuedrift.classifier.training_data import SEED, build_splits, shared_data_dir

    if not (shared_data_dir() / "hh-rlhf").is_dir():
        pytest.skip(f"shared data not found at {shared_data_dir()} (set VALUEDRIFT_SHARED_DATA)")
    splits = build_splits()
    labelled = {e.id for exs in splits.values() for e in exs}
    pool = unlabelled_pairs(shared_data_dir(), [e for exs in splits.values() for e in exs],
                            splits["val"] + splits["test"], SEED)
    held_out = {e.split_key for name in ("val", "test") for e in splits[name] if e.source in ("hh-rlhf", "hh-helpful")}
    trained = {e.split_key for e in splits["train"] if e.source in ("hh-rlhf", "hh-helpful")}
    keys = {e.split_key for e in pool if e.split_key}
    assert keys and not keys & held_out and keys & trained  # other turns of training dialogues, none held out
    texts = {(e.prompt, e.response) for name in ("val", "test") for e in splits[name]}
    assert not texts & {(e.prompt, e.response) for e in pool}
    assert not labelled & {e.id for e in pool} and all(e.label == UNLABELLED for e in pool)
    assert len({(e.prompt, e.response) for e in pool}) == len(pool)
    sources = Counter(e.source for e in pool)
    assert set(sources) == {"hh-unlabelled", "hho-unlabelled", "hhr-unlabelled", "demo-unlabelled",
                            "offtopic-unlabelled"}, sources
    # built off-topic pairs: a training dialogue's first request with a long answer from another training dialogue
    hh_pairs = sum(n for s, n in sources.items() if s.startswith("hh"))
    assert sources["offtopic-unlabelled"] <= int(hh_pairs * 0.2) and sources["offtopic-unlabelled"] > hh_pairs * 0.19
    answers = {}
    for e in pool:
        answers.setdefault(e.response, set()).add(e.split_key)
    for e in (e for e in pool if e.source == "offtopic-unlabelled"):
        assert assign(e.split_key, SEED, FRACTIONS) == "train" and e.split_key not in held_out
        assert answers[e.response] - {e.split_key}, e.id  # the answer comes from another dialogue of the pool
    without = unlabelled_pairs(shared_data_dir(), [e for exs in splits.values() for e in exs],
                               splits["val"] + splits["test"], SEED, off_topic_share=0)
    assert [e for e in pool if e.source != "offtopic-unlabelled"] == without


def test_off_topic_pairs_take_an_opening_request_and_a_long_answer_from_another_dialogue():
    from valuedrift.classifier.datasets import Example
    from valuedrift.classifier.training_data import MIN_DONOR_WORDS

    long = " ".join(["word"] * MIN_DONOR_WORDS)
    pool = [Example(id=f"d{i}-t1", prompt=f"later {i}", response=f"{long} from d{i}", label=UNLABELLED,
                    split_key=f"d{i}") for i in range(6)]
    pool += [Example(id="d9-t1", prompt="later 9", response="Sure.", label=UNLABELLED, split_key="d9")]  # too short
    openings = {f"d{i}": f"opening {i}" for i in (*range(6), 9)}
    built = off_topic_pairs(pool, openings, seed=4, share=2.0)
    assert len(built) == 14 and built == off_topic_pairs(pool, openings, seed=4, share=2.0)  # seeded
    for b in built:
        donor = b.response.rsplit(" ", 1)[1]
        assert b.prompt == openings[b.split_key] and donor != b.split_key and donor != "d9"
        assert b.label == UNLABELLED and b.source == "offtopic-unlabelled"
    assert len({b.id for b in built}) == len(built)
    assert off_topic_pairs(pool[:1], openings, seed=4) == []  # one dialogue: no other to take an answer from
    assert off_topic_pairs(pool, openings, seed=4, share=0) == []


@pytest.fixture(scope="module")
def teacher():
    from valuedrift.classifier.default_model import ensure_default_model

    return ensure_default_model()


@pytest.mark.slow  # trains a tiny student on the default model's probabilities
def test_a_student_learns_the_teachers_probabilities_on_unlabelled_pairs(tmp_path, teacher):
    ex = demo_corpus()
    train_ex, val_ex, pool = ex[:60], ex[60:100], ex[100:]
    write_unlabelled(pool, tmp_path / "unlabelled.jsonl")
    unl = read_unlabelled(tmp_path / "unlabelled.jsonl")
    assert [e.prompt for e in unl] == [e.prompt for e in pool] and {e.label for e in unl} == {UNLABELLED}
    teach = cached_teacher([teacher], train_ex, unl, 1.0, tmp_path / "t", precision="int8", progress=False)
    assert teach.labelled.shape == (60, 5) and teach.unlabelled.shape == (50, 5)
    assert list((tmp_path / "t").iterdir())  # computed once, read back by a resumed run
    again = cached_teacher([teacher], train_ex, unl, 1.0, tmp_path / "t", precision="int8", progress=False)
    assert np.array_equal(again.unlabelled, teach.unlabelled)
    twice = cached_teacher([teacher, teacher], train_ex, unl, 1.0, tmp_path / "t", precision="int8", progress=False)
    assert twice.name == f"{teach.name}+{teach.name}" and np.allclose(twice.labelled, teach.labelled)
    assert twice.fingerprint() != teach.fingerprint()
    other = tmp_path / "three-class-teacher"  # the same files, read as a model of other categories
    other.mkdir()
    for f in teacher.iterdir():
        (other / f.name).symlink_to(f)
    (other / "model.json").unlink()
    meta = json.loads((teacher / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**meta, "taxonomy": ["helpful", "refusal", "off_topic"]}))
    with pytest.raises(ValueError, match="teachers of one student share a taxonomy"):
        cached_teacher([teacher, other], train_ex, unl, 1.0, tmp_path / "t", precision="int8", progress=False)
    mpnet = tiny_mpnet(tmp_path / "mpnet", [e.prompt + " " + e.response for e in ex])
    cfg = TrainConfig(backbone=f"mpnet:{mpnet}", epochs=4, lr=3e-3, seed=2, max_length=96, max_prompt_tokens=40,
                      patience=4)
    card = train(train_ex, val_ex, cfg, tmp_path / "student", progress=False, teacher=teach, unlabelled=unl)
    assert card["distillation"]["unlabelled"] == 50 and card["data"]["train_pairs_per_epoch"] == 110
    assert card["distillation"]["balanced"] is True
    assert card["history"][-1]["train_loss"] < card["history"][0]["train_loss"]  # the KL to the teacher falls
    with pytest.raises(ValueError, match="pass --teacher with --unlabelled"):
        train(train_ex, val_ex, cfg, tmp_path / "x", progress=False, unlabelled=unl)
    from valuedrift.streams.core.taxonomy import THREE_CLASS_TAXONOMY

    with pytest.raises(ValueError, match=r"teacher's categories \(g1, g2, g3, g4, g5\) are not the student's"):
        train(train_ex, val_ex, cfg, tmp_path / "y", THREE_CLASS_TAXONOMY, progress=False, teacher=teach)


def test_train_cli_distillation_errors_are_one_line(tmp_path):
    ex = demo_corpus()
    write_jsonl(ex[:40], tmp_path / "train.jsonl")
    write_jsonl(ex[40:60], tmp_path / "val.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"prompt": "only a prompt"}\n')
    base = ("classifier", "train", "--data", str(tmp_path / "train.jsonl"), "--val", str(tmp_path / "val.jsonl"),
            "--out", str(tmp_path / "o"))
    for extra, says in [(("--unlabelled", str(tmp_path / "train.jsonl")), "pass --teacher MODEL too"),
                        (("--teacher", str(tmp_path)), "no model.json there"),
                        (("--teacher", str(tmp_path), "--distill-weight", "2"), "--distill-weight"),
                        ]:
        r = cli(*base, *extra)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, (extra, r.stderr[-1500:])
    with pytest.raises(ValueError, match="bad.jsonl:1: not a JSON object with prompt and response"):
        read_unlabelled(tmp_path / "bad.jsonl")

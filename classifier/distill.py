"""Distillation: train a student on the gold labels plus a teacher's probabilities, on the labelled training pairs
and on unlabelled pairs from the training side of the same sources.

The unlabelled pairs (``unlabelled_pairs``) are the answered turns of the hh-rlhf dialogues (red-team and everyday
helpful files, chosen and rejected sides, every turn, not only the last) whose dialogue falls in the training split,
minus the labelled ones, plus built off-topic pairs (``off_topic_pairs``: a training dialogue's opening request with
a long answer from another training dialogue, as the labelled ``hh-offtopic`` pairs are built; without them a
teacher has no off-topic pair to teach on), plus the demo corpus. A dialogue's split is a hash of its key alone
(``valuedrift.classifier.splits.assign``), the same hash that splits the labelled turns, so no validation or test
dialogue contributes a pair. The teacher is any exported model folder; its probabilities are computed once per run;
several teachers teach their mean probabilities (an ensemble). The loss is ``(1 - w) · CE(gold) + w · KL(teacher ‖
student)``, the cross-entropy over the labelled pairs and the KL over every pair, both class-weighted
(``balanced``): a pair's KL counts with the class weights the cross-entropy uses, averaged under the teacher's
probabilities, so that a pool of mostly everyday chat does not tilt the student towards its commonest category.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from valuedrift.classifier import hh_rlhf
from valuedrift.classifier.context import with_context
from valuedrift.classifier.datasets import Example
from valuedrift.classifier.splits import FRACTIONS, assign
from valuedrift.classifier.transcripts import answered_turns

if TYPE_CHECKING:
    from valuedrift.classifier.onnx_model import OnnxClassifier

UNLABELLED = ""  # the label of an unlabelled pair
OFF_TOPIC_SHARE = 0.2  # built off-topic pairs added to the pool, per hh-rlhf pair in it


def hh_turns(data_dir: Path, prefix: str, context_turns: int = 0) -> Iterator[Example]:
    """Every answered turn of the hh-rlhf file ``prefix``, both sides; the last turn's id is the labelled one's."""
    for transcript_id, text in hh_rlhf.transcripts(data_dir, prefix):
        turns = answered_turns(text)
        for t, (prompt, response, earlier) in enumerate(turns):
            ex_id = transcript_id + ("" if t == len(turns) - 1 else f"-t{t}")
            yield Example(id=ex_id, prompt=with_context(prompt, earlier, context_turns), response=response,
                          label=UNLABELLED, source=f"{prefix}-unlabelled", split_key=hh_rlhf.split_key(transcript_id))


def unlabelled_pairs(data_dir: Path, labelled: Sequence[Example], held_out: Sequence[Example], seed: int,
                     context_turns: int = 0, include_demo: bool = True,
                     off_topic_share: float = OFF_TOPIC_SHARE) -> list[Example]:
    """The training side's unlabelled pairs (see the module's text), each (prompt, response) once.

    ``labelled``: every labelled pair (left out by id); ``held_out``: the validation and test pairs, left out by
    text as well: the rejection-sampled helpful file repeats a conversation on many lines, so a training
    dialogue's turn can be a held-out dialogue's labelled one word for word. ``off_topic_share``: built off-topic
    pairs per hh-rlhf pair (0: none).
    """
    from valuedrift.classifier.corpus import demo_corpus

    labelled_ids = {e.id for e in labelled}
    seen = {(e.prompt, e.response) for e in held_out}
    out: list[Example] = []
    openings: dict[str, str] = {}
    for prefix in hh_rlhf.FILES:
        for e in hh_turns(data_dir, prefix, context_turns):
            if assign(e.split_key or e.id, seed, FRACTIONS) != "train":
                continue
            openings.setdefault(e.split_key or e.id, e.prompt)  # a dialogue's first turn: no earlier turns to add
            key = (e.prompt, e.response)
            if e.id in labelled_ids or key in seen or not e.response.strip():
                continue
            seen.add(key)
            out.append(e)
    for e in off_topic_pairs(out, openings, seed, off_topic_share):
        if (e.prompt, e.response) not in seen:
            seen.add((e.prompt, e.response))
            out.append(e)
    if include_demo:
        for e in demo_corpus():
            if (e.prompt, e.response) not in seen:
                seen.add((e.prompt, e.response))
                out.append(Example(id=f"demo-{e.id}", prompt=e.prompt, response=e.response, label=UNLABELLED,
                                   source="demo-unlabelled"))
    return out


def off_topic_pairs(pool: Sequence[Example], openings: dict[str, str], seed: int,
                    share: float = OFF_TOPIC_SHARE) -> list[Example]:
    """``share × len(pool)`` unlabelled off-topic pairs: a dialogue's opening request (``openings``: dialogue key →
    request) with an answer of at least ``MIN_DONOR_WORDS`` words from another dialogue of ``pool``; seeded.

    >>> from valuedrift.classifier.datasets import Example
    >>> long = " ".join(["word"] * 20)
    >>> pool = [Example(id=f"d{i}", prompt=f"q{i}", response=f"{long} {i}", label="", split_key=f"d{i}")
    ...         for i in range(10)]
    >>> built = off_topic_pairs(pool, {e.split_key: e.prompt for e in pool}, seed=1, share=0.5)
    >>> len(built), all(b.prompt != "q" + b.response.rsplit(" ", 1)[1] for b in built)
    (5, True)
    """
    from valuedrift.classifier.training_data import MIN_DONOR_WORDS

    rng = random.Random(seed)
    donors = [e for e in pool if e.split_key and len(e.response.split()) >= MIN_DONOR_WORDS]
    keys = sorted(openings)
    if len({e.split_key for e in donors}) < 2 or not keys:
        return []
    out = []
    for i in range(int(len(pool) * share)):
        key = rng.choice(keys)
        donor = rng.choice(donors)
        while donor.split_key == key:
            donor = rng.choice(donors)
        out.append(Example(id=f"{key}-offtopic-{i}", prompt=openings[key], response=donor.response,
                           label=UNLABELLED, source="offtopic-unlabelled", split_key=key))
    return out


def write_unlabelled(examples: Sequence[Example], path: Path) -> None:
    """One JSON object per line: id, prompt, response, source (no label)."""
    with path.open("w", encoding="utf-8") as fh:
        for e in examples:
            fh.write(json.dumps({"id": e.id, "prompt": e.prompt, "response": e.response, "source": e.source}) + "\n")


def read_unlabelled(path: Path) -> list[Example]:
    """Pairs without labels (``prepare --unlabelled`` writes them; a ``label`` field, if any, is ignored)."""
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--unlabelled {path}: cannot be read ({err.__class__.__name__})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append(Example(id=str(obj.get("id", f"line-{n}")), prompt=str(obj["prompt"]),
                               response=str(obj["response"]), label=UNLABELLED, source=obj.get("source")))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise ValueError(f"--unlabelled {path}:{n}: not a JSON object with prompt and response") from None
    if not out:
        raise ValueError(f"--unlabelled {path}: no pairs in it")
    return out


@dataclass(frozen=True)
class Teacher:
    """A teacher's probabilities for the labelled training pairs and for the unlabelled pairs."""

    name: str  # the teacher model's version ("a+b" for an ensemble)
    labelled: np.ndarray  # [n_train, n_classes]
    unlabelled: np.ndarray  # [n_unlabelled, n_classes]
    weight: float = 0.5  # w in (1 - w) CE + w KL
    balanced: bool = True  # each pair's KL weighted by the class weights under the teacher's probabilities
    codes: tuple[str, ...] = ()  # the teachers' categories, in the order of the columns (empty: not checked)

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{self.name}|{self.weight}|{self.balanced}".encode())
        h.update(np.ascontiguousarray(self.labelled, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.unlabelled, dtype=np.float32).tobytes())
        return h.hexdigest()[:16]


def teacher_probabilities(model: OnnxClassifier, examples: Sequence[Example], chunk: int = 256,
                          progress: bool = True) -> np.ndarray:
    """The model's probabilities for every pair (in order)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    out = np.zeros((len(examples), model.taxonomy.size), dtype=np.float32)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"teacher {model.version} ({model.precision})", total=len(examples))
        for s in range(0, len(examples), chunk):
            part = examples[s : s + chunk]
            out[s : s + len(part)] = model.predict_proba([e.prompt for e in part], [e.response for e in part])
            bar.update(task, advance=len(part))
    return out


def cached_teacher(model_dirs: Sequence[Path], train_ex: Sequence[Example], unlabelled: Sequence[Example],
                   weight: float, cache: Path, precision: str = "fp32", progress: bool = True,
                   balanced: bool = True) -> Teacher:
    """``Teacher`` for these pairs: the mean of the models' probabilities, each model's read from ``cache`` when it
    holds that model's for the same pairs (a resumed run does not pay for them twice)."""
    from valuedrift.classifier.activation_cache import save_array
    from valuedrift.classifier.onnx_model import OnnxClassifier

    pairs = (*train_ex, *unlabelled)
    texts = hashlib.sha256()
    for e in pairs:
        texts.update(json.dumps([e.prompt, e.response]).encode())
    versions, probs, codes = [], [], None
    for model_dir in model_dirs:
        model = OnnxClassifier(model_dir, precision=precision)
        if codes is not None and model.taxonomy.codes != codes:
            raise ValueError(f"--teacher {model_dir}: its categories {', '.join(model.taxonomy.codes)} are not the "
                             f"first teacher's {', '.join(codes)}; teachers of one student share a taxonomy")
        codes = model.taxonomy.codes
        h = texts.copy()
        h.update(f"|{model.version}|{precision}".encode())
        file = cache / f"teacher-{h.hexdigest()[:16]}.npy"
        if file.exists():
            probs.append(np.load(file))
        else:
            probs.append(teacher_probabilities(model, pairs, progress=progress))
            cache.mkdir(parents=True, exist_ok=True)
            save_array(file, probs[-1])
        versions.append(model.version)
    mean = np.mean(probs, axis=0)
    return Teacher("+".join(versions), mean[: len(train_ex)], mean[len(train_ex) :], weight, balanced,
                   tuple(codes or ()))

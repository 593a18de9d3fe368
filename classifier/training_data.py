"""The labelled training data, by source.

- ``xstest``: XSTest completions, and ``xstest-offtopic``: off-topic pairs built from them;
- ``hh-rlhf``: hand-labelled last turns of hh-rlhf red-team dialogues, and ``hh-offtopic``: built off-topic pairs;
- ``hh-helpful``: hand-labelled last turns of hh-rlhf's everyday helpful dialogues;
- ``jailbreakbench``: responses to jailbreak attacks, read and labelled (g2, g3 or g5).

Splits are by prompt (XSTest), by dialogue (hh-rlhf) and by behaviour (JailbreakBench), seeded, 70/15/15, so the
same prompt never sits on both sides; each unit is hashed alone, so adding a source moves no existing example.
Texts are read from the shared data folder; only ids and labels are in the repository (``classifier/labels/``).
"""

from __future__ import annotations

import json
import os
import random
from importlib import resources
from pathlib import Path

from valuedrift.classifier import hh_rlhf, jailbreakbench, xstest
from valuedrift.classifier.context import with_context
from valuedrift.classifier.datasets import Example
from valuedrift.classifier.splits import split_by_key

SEED = 13
SPLITS = ("train", "val", "test")


def shared_data_dir() -> Path:
    """``VALUEDRIFT_SHARED_DATA``, else ``../shared/data`` beside the project checkout."""
    env = os.environ.get("VALUEDRIFT_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def hh_labels(name: str = "hh_rlhf_labels.jsonl") -> dict[str, str]:
    """Committed labels by id (``name``: a file in ``classifier/labels``; by default the hh-rlhf red-team turns)."""
    text = (resources.files("valuedrift.classifier") / "labels" / name).read_text(encoding="utf-8")
    return {o["id"]: o["label"] for o in map(json.loads, filter(None, text.splitlines()))}


HELPFUL_LABELS = "hh_helpful_labels.jsonl"
JAILBREAK_LABELS = "jailbreakbench_labels.jsonl"


def hh_examples(data_dir: Path, context_turns: int = 0, prefixes: tuple[str, ...] = ("hh",),
                labels_file: str = "hh_rlhf_labels.jsonl", source: str = "hh-rlhf",
                group: str = "red-team") -> tuple[list[Example], dict[str, str]]:
    """The labelled last turns of the hh-rlhf files ``prefixes``, and each dialogue's opening request by split key.

    With ``context_turns``, the last turns' prompts carry that many earlier turns.
    """
    labels = hh_labels(labels_file)
    out, openings = [], {}
    for prefix in prefixes:
        for ex_id, prompt, response, earlier in hh_rlhf.dialogues(data_dir, prefix):
            if ex_id in labels:
                key = hh_rlhf.split_key(ex_id)
                out.append(Example(id=ex_id, prompt=with_context(prompt, earlier, context_turns), response=response,
                                   label=labels[ex_id], source=source, model=f"{prefix}-" + ex_id.rsplit("-", 1)[1],
                                   group=group, split_key=key))
                openings.setdefault(key, earlier[0][1] if earlier and earlier[0][0] == "Human" else prompt)
    return out, openings


def helpful_examples(data_dir: Path, context_turns: int = 0) -> list[Example]:
    """The labelled last turns of the everyday helpful dialogues (source ``hh-helpful``)."""
    return hh_examples(data_dir, context_turns, hh_rlhf.HELPFUL, HELPFUL_LABELS, "hh-helpful", "helpful")[0]


MIN_DONOR_WORDS = 20  # shorter answers ("Sure.", "That should work.") fit almost any request


def hh_off_topic(pool: list[Example], openings: dict[str, str], seed: int, share: float = 0.25) -> list[Example]:
    """Off-topic pairs in the dialogue style: a dialogue's opening request with a compliant answer from another.

    The opening request, not the last turn: a last turn such as "yes" or "how do I do it?" is answered
    by almost anything, so an off-topic label on it could not be told from the pair alone. For the same
    reason the answer has at least ``MIN_DONOR_WORDS`` words.
    """
    rng = random.Random(seed)
    answers = [e for e in pool if e.label in ("g1", "g2") and len(e.response.split()) >= MIN_DONOR_WORDS]
    out = []
    for e in rng.sample(pool, int(len(pool) * share)) if answers else []:
        other = rng.choice([a for a in answers if a.split_key != e.split_key] or answers)
        out.append(Example(id=f"{e.id}-g5", prompt=openings[e.split_key], response=other.response, label="g5",
                           source="hh-offtopic", model=e.model, group="red-team", split_key=e.split_key))
    return out


def build_splits(data_dir: Path | None = None, seed: int = SEED, context_turns: int = 0) -> dict[str, list[Example]]:
    """Return train/val/test examples from every source; g5 pairs are built inside each split.

    ``context_turns``: earlier turns appended to hh-rlhf prompts (``valuedrift.classifier.context``); the splits and the
    built pairs do not depend on it.
    """
    data_dir = data_dir or shared_data_dir()
    if not (data_dir / "xstest").is_dir():
        raise FileNotFoundError(f"{data_dir}/xstest not found: set VALUEDRIFT_SHARED_DATA to the shared data folder")
    xs = dict(zip(SPLITS, split_by_key(xstest.examples(data_dir), seed), strict=True))
    turns, openings = hh_examples(data_dir, context_turns)
    hh = dict(zip(SPLITS, split_by_key(turns, seed), strict=True))
    helpful = dict(zip(SPLITS, split_by_key(helpful_examples(data_dir, context_turns), seed), strict=True))
    attacks = jailbreakbench.examples(data_dir, hh_labels(JAILBREAK_LABELS))
    jbb = dict(zip(SPLITS, split_by_key(attacks, seed), strict=True))
    out = {}
    for i, name in enumerate(SPLITS):
        out[name] = (xs[name] + xstest.off_topic_examples(xs[name], seed + i)
                     + hh[name] + hh_off_topic(hh[name], openings, seed + i) + helpful[name] + jbb[name])
    return out

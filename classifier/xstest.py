"""XSTest (``../shared/data/xstest``) as labelled examples, with the mapping of its data README.

| prompt | response | category |
|---|---|---|
| safe | full compliance | g1 |
| unsafe (``contrast_*``) | full compliance | g2 |
| unsafe | full or partial refusal | g3 |
| safe | full or partial refusal | g4 |

XSTest has no off-topic answers: g5 examples are built by pairing a prompt with
a fully compliant answer written for a prompt of another type, within the
same split.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path

from valuedrift.classifier.datasets import Example

MODELS = ("gpt4", "llama2new", "llama2orig", "mistralguard", "mistralinstruct")
COMPLIANCE = "1_full_compliance"


def category(prompt_type: str, judgement: str) -> str:
    """Map an XSTest prompt type and a response judgement onto g1..g4.

    >>> category("homonyms", "1_full_compliance"), category("contrast_homonyms", "3_partial_refusal")
    ('g1', 'g3')
    """
    unsafe = prompt_type.startswith("contrast_")
    if judgement == COMPLIANCE:
        return "g2" if unsafe else "g1"
    return "g3" if unsafe else "g4"


def load_completions(data_dir: Path) -> list[dict[str, str]]:
    """Return every completion row of the five models, with a ``model`` column added."""
    rows = []
    for model in MODELS:
        path = data_dir / "xstest" / f"xstest_v2_completions_{model}.csv"
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                rows.append({**row, "model": model})
    return rows


def examples(data_dir: Path) -> list[Example]:
    """Return g1..g4 examples, one per (model, prompt), keyed so that a prompt never spans two splits."""
    out = []
    for row in load_completions(data_dir):
        out.append(Example(
            id=f"xs-{row['model']}-{row['id']}", prompt=row["prompt"], response=row["completion"],
            label=category(row["type"], row["final_label"]), model=row["model"], source="xstest",
            group=row["type"], split_key=f"xs-{row['id']}",
        ))
    return out


def human_labels(data_dir: Path) -> tuple[list[str], list[str]]:
    """Return the two annotators' labels mapped to categories (for the human-ceiling κ)."""
    a, b = [], []
    for row in load_completions(data_dir):
        a.append(category(row["type"], row["annotation_1"]))
        b.append(category(row["type"], row["annotation_2"]))
    return a, b


def off_topic_examples(pool: Sequence[Example], seed: int, per_prompt: int = 1) -> list[Example]:
    """Build g5 examples from a pool: each prompt paired with a compliant answer to a prompt of another type."""
    rng = random.Random(seed)
    answers = [e for e in pool if e.label in ("g1", "g2")]
    prompts = {}
    for e in pool:
        prompts.setdefault(e.split_key, e)
    out = []
    for key in sorted(prompts):
        e = prompts[key]
        candidates = [a for a in answers if a.group != e.group]
        for j in range(per_prompt):
            other = rng.choice(candidates)
            out.append(Example(
                id=f"xs-g5-{key.removeprefix('xs-')}-{j}", prompt=e.prompt, response=other.response, label="g5",
                model=other.model, source="xstest-offtopic", group=e.group, split_key=e.split_key,
            ))
    return out

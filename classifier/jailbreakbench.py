"""Real LLM responses to jailbreak attacks (JailbreakBench artifacts) as labelled examples.

Each pair is an attack prompt that carries one harmful behaviour (``goal``) and a target model's response. The
request is always harmful, so a pair is g2 (the response advances the goal), g3 (it refuses or gives only
harmless information) or g5 (it does not address the goal). The labels are committed as ids
(``classifier/labels/jailbreakbench_labels.jsonl``): every pair the benchmark's judge calls not jailbroken was
read under ``RUBRIC.md``, and so was a random sample of the jailbroken ones; the unread jailbroken pairs keep
the judge's verdict, g2 (``"read": false``). Splits are by behaviour (the id's last number), so the attacks on
one behaviour never sit on both sides.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from valuedrift.classifier.datasets import Example

FILE = "jailbreakbench/artifacts-dev.jsonl.gz"
SOURCE = "jailbreakbench"


def behaviour_key(pair_id: str) -> str:
    """The split key of a pair: its behaviour, the number its id ends in.

    >>> behaviour_key("jbb-PAIR-gpt-4-0125-preview-12")
    'jbb-12'
    """
    return "jbb-" + str(int(pair_id.rsplit("-", 1)[1]))


def examples(data_dir: Path, labels: dict[str, str]) -> list[Example]:
    """The labelled pairs of the data folder's artifacts file (``labels``: id → code)."""
    out = []
    with gzip.open(data_dir / FILE, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["id"] in labels:
                out.append(Example(id=row["id"], prompt=row["prompt"], response=row["response"] or "",
                                   label=labels[row["id"]], source=SOURCE, model=row["model"], group=row["method"],
                                   split_key=behaviour_key(row["id"])))
    return out


def jailbroken(data_dir: Path) -> dict[str, bool]:
    """The benchmark judge's verdict of every pair, by id (for scores against the judge's labels)."""
    with gzip.open(data_dir / FILE, "rt", encoding="utf-8") as fh:
        return {row["id"]: bool(row["jailbroken"]) for row in map(json.loads, fh)}

"""Real dialogues from Anthropic's hh-rlhf (the shared data folder's ``hh-rlhf``): parsing and labelled last turns.

Each line holds a ``chosen`` and a ``rejected`` transcript in the form
``\\n\\nHuman: ...\\n\\nAssistant: ...``. A labelled example is the last
(human turn, assistant turn) pair of one transcript; its id is
``<prefix>-<line>-<chosen|rejected>``, with the prefix of its file (``FILES``): ``hh`` for the red-team
file, ``hho`` and ``hhr`` for the two files of everyday helpful dialogues. Only ids and labels are committed
(``classifier/labels/``, rubric in ``RUBRIC.md``); the texts are read from the data folder.

The transcripts are parsed by ``valuedrift.classifier.transcripts`` (``last_exchange``), as the worker parses them.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from valuedrift.classifier.transcripts import last_exchange

FILE = "hh-rlhf/harmless-base-test.jsonl.gz"
# Id prefix -> file, relative to the data folder: red-teaming, then everyday helpful traffic.
FILES = {"hh": FILE, "hho": "hh-rlhf/helpful-online-test.jsonl.gz",
         "hhr": "hh-rlhf/helpful-rejection-sampled-test.jsonl.gz"}
HELPFUL = ("hho", "hhr")


def transcripts(data_dir: Path, prefix: str = "hh") -> Iterator[tuple[str, str]]:
    """Yield (``<prefix>-<line>-<side>``, transcript text) for both sides of every line of ``FILES[prefix]``."""
    with gzip.open(data_dir / FILES[prefix], "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            row = json.loads(line)
            for side in ("chosen", "rejected"):
                yield f"{prefix}-{i:04d}-{side}", row[side]


def dialogues(data_dir: Path, prefix: str = "hh") -> Iterator[tuple[str, str, str, list[tuple[str, str]]]]:
    """Yield (id, prompt, response, context) for the last pair of every transcript of ``FILES[prefix]``."""
    for transcript_id, text in transcripts(data_dir, prefix):
        pair = last_exchange(text)
        if pair is not None:
            yield transcript_id, pair[0], pair[1], pair[2]


def split_key(example_id: str) -> str:
    """The dialogue an example belongs to: its id without the side.

    >>> split_key("hho-0042-chosen"), split_key("hh-0001-rejected")
    ('hho-0042', 'hh-0001')
    """
    return example_id.rsplit("-", 1)[0]


def _dump(data_dir: Path, start: int, end: int, prefix: str = "hh") -> None:
    """Print the dialogues of lines [start, end) for labelling."""
    for ex_id, prompt, response, context in dialogues(data_dir, prefix):
        line = int(ex_id.split("-")[1])
        if not start <= line < end:
            continue
        print(f"=== {ex_id}")
        for speaker, text in context[-4:]:
            print(f"[context {speaker}] {text[:600]}")
        print(f"[LAST Human] {prompt}")
        print(f"[LAST Assistant] {response}")
        print()


if __name__ == "__main__":  # python -m valuedrift.classifier.hh_rlhf DATA_DIR START END [PREFIX]
    _dump(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])

"""Real red-team dialogues from Anthropic's hh-rlhf (``../shared/data/hh-rlhf``): parsing and labelled last turns.

Each line holds a ``chosen`` and a ``rejected`` transcript in the form
``\\n\\nHuman: ...\\n\\nAssistant: ...``. A labelled example is the last
(human turn, assistant turn) pair of one transcript; its id is
``hh-<line>-<chosen|rejected>``. Only ids and labels are committed
(``classifier/labels/hh_rlhf_labels.jsonl``, rubric in ``RUBRIC.md``); the texts
are read from the data folder.

The transcripts are parsed by ``classifier.transcripts`` (``last_exchange``), as the worker parses them.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from classifier.transcripts import last_exchange

FILE = "hh-rlhf/harmless-base-test.jsonl.gz"


def dialogues(data_dir: Path) -> Iterator[tuple[str, str, str, list[tuple[str, str]]]]:
    """Yield (id, prompt, response, context) for the last pair of every transcript."""
    path = data_dir / FILE
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            row = json.loads(line)
            for side in ("chosen", "rejected"):
                pair = last_exchange(row[side])
                if pair is not None:
                    yield f"hh-{i:04d}-{side}", pair[0], pair[1], pair[2]


def _dump(data_dir: Path, start: int, end: int) -> None:
    """Print the dialogues of lines [start, end) for labelling."""
    for ex_id, prompt, response, context in dialogues(data_dir):
        line = int(ex_id.split("-")[1])
        if not start <= line < end:
            continue
        print(f"=== {ex_id}")
        for speaker, text in context[-4:]:
            print(f"[context {speaker}] {text[:600]}")
        print(f"[LAST Human] {prompt}")
        print(f"[LAST Assistant] {response}")
        print()


if __name__ == "__main__":  # python -m classifier.hh_rlhf DATA_DIR START END
    _dump(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))

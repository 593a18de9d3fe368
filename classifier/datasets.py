"""Labelled (prompt, response, label) examples in JSONL: loading with errors that name file and line.

One JSON object per line: ``id``, ``prompt``, ``response``, ``label`` (a code
such as ``g2`` or a category name such as ``helpful_misaligned``), and
optionally ``model``, ``source`` and ``group``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from valuedrift.streams.core.taxonomy import DEFAULT_TAXONOMY, Taxonomy


@dataclass(frozen=True)
class Example:
    """One labelled response."""

    id: str
    prompt: str
    response: str
    label: str
    model: str | None = None
    source: str | None = None
    group: str | None = None  # e.g. the prompt type; entropy agreement is measured per (model, group)
    split_key: str | None = None  # examples sharing it always land in the same split (the prompt)


class DatasetError(ValueError):
    """A labelled file that cannot be read; the message names the file, the line and the problem."""


def parse_examples(lines: Iterable[str], name: str, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> Iterator[Example]:
    """Yield examples from JSONL lines; raise DatasetError naming ``name`` and the line on a bad one."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{name}:{lineno}: not valid JSON ({err.msg})") from None
        except RecursionError:
            raise DatasetError(f"{name}:{lineno}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise DatasetError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        for f in ("id", "prompt", "response", "label"):
            if not isinstance(obj.get(f), str):
                raise DatasetError(f"{name}:{lineno}: field {f!r} is missing or not a string")
        try:
            label = taxonomy.relabel(obj["label"])
        except ValueError as err:
            raise DatasetError(f"{name}:{lineno}: {err}") from None
        yield Example(id=obj["id"], prompt=obj["prompt"], response=obj["response"], label=label,
                      model=obj.get("model"), source=obj.get("source"), group=obj.get("group"))


def load_jsonl(path: str | Path, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[Example]:
    """Return the examples of a labelled JSONL file."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8") as fh:
            return list(parse_examples(fh, str(p), taxonomy))
    except FileNotFoundError:
        raise DatasetError(f"{p}: no such file") from None
    except UnicodeDecodeError as err:
        raise DatasetError(f"{p}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def write_jsonl(examples: Iterable[Example], path: str | Path) -> int:
    """Write examples as labelled JSONL; return how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for e in examples:
            obj = {"id": e.id, "prompt": e.prompt, "response": e.response, "label": e.label}
            obj.update({k: v for k, v in (("model", e.model), ("source", e.source), ("group", e.group)) if v})
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
            n += 1
    return n

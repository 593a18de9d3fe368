"""The demo corpus shipped with the project: prompts and responses written for it, 30 per category."""

from __future__ import annotations

from importlib import resources

from valuedrift.classifier.datasets import Example, parse_examples


def demo_corpus() -> list[Example]:
    """Return the shipped demo corpus (``classifier/data/demo_corpus.jsonl``)."""
    ref = resources.files("valuedrift.classifier") / "data" / "demo_corpus.jsonl"
    return list(parse_examples(ref.read_text(encoding="utf-8").splitlines(), "demo_corpus.jsonl"))


def by_label(examples: list[Example]) -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {}
    for e in examples:
        out.setdefault(e.label, []).append(e)
    return out

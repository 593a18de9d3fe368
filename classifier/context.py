"""Earlier turns of a conversation appended to the prompt the classifier sees: one format for training and serving.

The encoder keeps the head of the prompt, so the last human turn comes first and the earlier turns follow
it, most recent first: when the prompt budget runs out, the oldest turns are the ones cut.

>>> with_context("and then?", [("Human", "how do I bake bread?"), ("Assistant", "Mix flour and water.")], turns=4)
'and then?\\n\\n[earlier, most recent first] Assistant: Mix flour and water. | Human: how do I bake bread?'
>>> with_context("and then?", [("Human", "how do I bake bread?")], turns=0)
'and then?'
"""

from __future__ import annotations

from collections.abc import Sequence

MARK = "[earlier, most recent first]"
TURN_CHARS = 300  # each earlier turn is cut to this many characters


def with_context(prompt: str, earlier: Sequence[tuple[str, str]], turns: int) -> str:
    """``prompt`` followed by the last ``turns`` of ``earlier`` ((speaker, text) pairs, oldest first)."""
    recent = [f"{speaker}: {text[:TURN_CHARS]}" for speaker, text in reversed(earlier[-turns:])] if turns > 0 else []
    return f"{prompt}\n\n{MARK} " + " | ".join(recent) if recent else prompt

"""Chat transcripts as text (``Human: ... Assistant: ...``): one parser for labelling and for serving.

Two layouts are read: hh-rlhf's, where every turn starts after a blank line (``\\n\\nHuman:``), and one turn
per line (``Human:`` at the start of a line, indentation allowed). A text with any ``\\n\\nHuman:`` or
``\\n\\nAssistant:`` is read the first way, so a turn may then hold single line breaks and even a line that
starts with ``Human:``.

>>> split_turns("\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: bye\\n\\nAssistant: ok")
[('Human', 'hi'), ('Assistant', 'hello'), ('Human', 'bye'), ('Assistant', 'ok')]
>>> [(h, a) for h, a, _ in answered_turns("Human: a\\nAssistant: b\\nAssistant: c\\nHuman: d")]
[('a', 'b'), ('a', 'c')]
>>> last_exchange("Human: a\\nAssistant: b\\nAssistant: c\\nHuman: d")[:2]
('a', 'b')
"""

from __future__ import annotations

import re

_BY_LINE = re.compile(r"(?:\A|\n)[ \t]*(Human|Assistant):")
_BY_BLANK_LINE = re.compile(r"(?:\A|\n\n)(Human|Assistant):")

Turn = tuple[str, str]  # (speaker, text)


def split_turns(text: str) -> list[Turn]:
    """The (speaker, text) turns of a transcript, in order; text before the first turn is dropped."""
    hh = "\n\nHuman:" in text or "\n\nAssistant:" in text
    parts = (_BY_BLANK_LINE if hh else _BY_LINE).split(text)
    return [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]


def answered_turns(text: str) -> list[tuple[str, str, list[Turn]]]:
    """(human turn, assistant turn, the turns before that human turn) for every assistant turn after a human one.

    An assistant that speaks twice in a row answers the same human turn twice: what a monitor classifies.
    """
    turns = split_turns(text)
    out = []
    human: int | None = None
    for i, (speaker, body) in enumerate(turns):
        if speaker == "Human":
            human = i
        elif human is not None:
            out.append((turns[human][1], body, turns[:human]))
    return out


def last_exchange(text: str) -> tuple[str, str, list[Turn]] | None:
    """(human turn, the assistant turn right after it, the turns before), for the last such pair; or None.

    The labelled hh-rlhf examples are these. It is ``answered_turns(text)[-1]`` except where the assistant
    speaks twice in a row at the end (5 of the 4,624 hh-rlhf transcripts), where it keeps the first answer,
    the one the labels were written for.
    """
    turns = split_turns(text)
    for i in range(len(turns) - 1, 0, -1):
        if turns[i][0] == "Assistant" and turns[i - 1][0] == "Human":
            return turns[i - 1][1], turns[i][1], turns[: i - 1]
    return None

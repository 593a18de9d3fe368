"""One-line errors for the command line, and text made safe to print on a terminal."""

from __future__ import annotations

import unicodedata
from typing import NoReturn

import typer


def printable(text: str) -> str:
    r"""``text`` with control and format characters escaped, so a monitor key or a record's text can neither
    drive the terminal (``\x1b]0;…\x07`` retitles it) nor hide what follows (a right-to-left override).

    >>> printable("model-\x1b]0;owned\x07a"), printable("ok\u202etxt.exe")
    ('model-\\x1b]0;owned\\x07a', 'ok\\u202etxt.exe')
    """
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit non-zero (never a traceback for bad input)."""
    typer.echo(f"error: {printable(message)}", err=True)
    raise typer.Exit(code)

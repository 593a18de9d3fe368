"""One-line errors for the command line."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit non-zero (never a traceback for bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)

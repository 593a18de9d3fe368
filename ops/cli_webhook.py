"""``valuedrift webhook verify``: check a received webhook delivery from the shell (what a receiver's code does)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from valuedrift.ops.cli_errors import fail

app = typer.Typer(help="Webhook deliveries: verify a received one.", no_args_is_help=True)


@app.command()
def verify(
    body: Annotated[Path, typer.Option(help="file holding the request body exactly as received")],
    timestamp: Annotated[str, typer.Option(help="the X-Valuedrift-Timestamp header")],
    delivery: Annotated[str, typer.Option(help="the X-Valuedrift-Delivery header")],
    signature: Annotated[str, typer.Option(help="the X-Valuedrift-Signature header")],
    tolerance: Annotated[float, typer.Option(min=1, max=86400, help="seconds a time stamp may be from now")] = 300,
) -> None:
    """Verify one delivery with the secret in VALUEDRIFT_WEBHOOK_SECRET: exit 0 if authentic and fresh, else 1."""
    from valuedrift.streams.core.webhook_signature import (
        DELIVERY_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        SignatureError,
    )
    from valuedrift.streams.core.webhook_signature import verify as check

    secret = os.environ.get("VALUEDRIFT_WEBHOOK_SECRET", "")
    if not secret:
        fail("set VALUEDRIFT_WEBHOOK_SECRET to the secret the worker signs with")
    try:
        raw = body.read_bytes()
    except OSError as err:
        fail(f"cannot read --body {body}: {err.strerror or err}")
    headers = {TIMESTAMP_HEADER: timestamp, DELIVERY_HEADER: delivery, SIGNATURE_HEADER: signature}
    try:
        check(raw, headers, secret.encode(), tolerance=tolerance)
    except SignatureError as err:
        fail(f"delivery {delivery[:64]!r} does not verify: {err}", 1)
    typer.echo(f"ok: delivery {delivery} is authentic and fresh")

"""Signed webhook deliveries that cannot be replayed, and the check a receiver runs (pure: hmac, no network).

Each delivery of an alert is a ``POST`` of its JSON with three headers:

- ``X-Valuedrift-Delivery``: a unique id of the delivery (the same on its retries, so receivers de-duplicate);
- ``X-Valuedrift-Timestamp``: when this attempt was sent, in Unix seconds;
- ``X-Valuedrift-Signature``: ``v1=`` and the HMAC-SHA256, under the secret in ``VALUEDRIFT_WEBHOOK_SECRET``,
  of ``timestamp + "." + delivery + "." + body``.

A receiver recomputes the HMAC with the shared secret, compares it in constant time, and refuses a timestamp
further than its tolerance (5 minutes by default) from its own clock; a captured delivery then verifies only
within that window, and the delivery id lets the receiver refuse a second copy inside it. What the signature
promises: the body, its time stamp and its delivery id come from a holder of the secret, unchanged.

>>> headers = signed_headers(b'{"rule": "drift"}', b"secret", timestamp=1767225600, delivery="d1")
>>> headers[SIGNATURE_HEADER]
'v1=03def1d30e80b78cfef998eea8590e65dd177159d4eb224b3aa838409a785495'
>>> verify(b'{"rule": "drift"}', headers, b"secret", now=1767225660)
>>> try:
...     verify(b'{"rule": "drift"}', headers, b"secret", now=1767226600)
... except SignatureError as err:
...     print(str(err)[:44])
timestamp 1767225600 is 1000 s from now, mor
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Valuedrift-Signature"
TIMESTAMP_HEADER = "X-Valuedrift-Timestamp"
DELIVERY_HEADER = "X-Valuedrift-Delivery"
VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """A delivery that does not verify; the message says why."""


def signature(body: bytes, secret: bytes, timestamp: int, delivery: str) -> str:
    """The signature header value: ``v1=`` and the HMAC-SHA256 of ``timestamp.delivery.body``."""
    signed = f"{timestamp}.{delivery}.".encode() + body
    return f"{VERSION}=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def new_delivery() -> str:
    return uuid.uuid4().hex


def signed_headers(body: bytes, secret: bytes, timestamp: int | None = None, delivery: str | None = None
                   ) -> dict[str, str]:
    """The three headers of one delivery attempt."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    delivery = delivery or new_delivery()
    return {TIMESTAMP_HEADER: str(ts), DELIVERY_HEADER: delivery,
            SIGNATURE_HEADER: signature(body, secret, ts, delivery)}


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():  # HTTP header names are case-insensitive
        if key.lower() == name.lower():
            return value
    raise SignatureError(f"missing header {name}")


def verify(body: bytes, headers: Mapping[str, str], secret: bytes, tolerance: float = DEFAULT_TOLERANCE_SECONDS,
           now: float | None = None) -> None:
    """Return if the delivery is authentic and fresh; raise SignatureError saying why not."""
    if not secret:
        raise SignatureError("no secret to verify with: set VALUEDRIFT_WEBHOOK_SECRET to the sender's secret")
    raw_ts, delivery, got = (_header(headers, h) for h in (TIMESTAMP_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER))
    try:
        ts = int(raw_ts)
    except ValueError:
        raise SignatureError(f"timestamp {raw_ts[:40]!r} is not Unix seconds") from None
    expected = signature(body, secret, ts, delivery)
    if not hmac.compare_digest(expected.encode(), got.strip().encode()):
        raise SignatureError("signature does not match: a changed body, time stamp or delivery id, or another secret")
    skew = abs((time.time() if now is None else now) - ts)
    if skew > tolerance:
        raise SignatureError(f"timestamp {ts} is {skew:.0f} s from now, more than the tolerance of {tolerance:g} s: "
                             f"a replayed or delayed delivery")

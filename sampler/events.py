"""Request parsing and response building for the sampler (pure logic: no Kafka, no torch).

>>> req, reason = parse_request(b'{"id": "q1", "monitor_key": "m", "step": 2, "prompt": "Hi", "k": 2, "seed": 5}',
...                             max_bytes=10_000)
>>> reason is None, req.k
(True, 2)
>>> parse_request(b'{"id": "q1"}', max_bytes=10_000)[1]
'invalid probe request: monitor_key: Field required; step: Field required'
>>> evs = response_events(req, [Sample("Hello", 2), Sample("Hey", 1)], backend="hf", model="tiny", now=1767225600.0)
>>> [(e.id, e.prompt, e.response, e.metadata["sample_index"]) for e in evs]
[('q1/0', 'Hi', 'Hello', 0), ('q1/1', 'Hi', 'Hey', 1)]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from valuedrift.streams.core.records import ProbeRequest, RecordError, ResponseEvent, parse_event_time


@dataclass(frozen=True)
class Sample:
    """One generated response."""

    text: str
    tokens: int | None = None  # generated tokens, when the backend can tell per sample
    finish_reason: str | None = None


def parse_request(raw: bytes | None, max_bytes: int) -> tuple[ProbeRequest | None, str | None]:
    """Return (request, None), or (None, the reason the message is unusable)."""
    if not raw:
        return None, "empty message"
    if len(raw) > max_bytes:
        return None, f"message of {len(raw)} bytes exceeds max_message_bytes={max_bytes}"
    try:
        req = ProbeRequest.parse_bytes(raw)
    except RecordError as err:
        return None, f"invalid probe request: {err}"
    if "event_time" in req.metadata:
        try:
            parse_event_time(req.metadata["event_time"])
        except ValueError as err:
            return None, f"invalid probe request: metadata.event_time: {err}"
    return req, None


def response_events(req: ProbeRequest, samples: Sequence[Sample], *, backend: str, model: str,
                    now: float | None = None) -> list[ResponseEvent]:
    """The k response events of a request: id ``<request id>/<sample index>``, prompt = the last user turn.

    The event time is the time of generation, unless the request carries ``metadata.event_time`` (a probe
    run with ``--step-seconds`` sets it so that each step falls in its own window).
    """
    if len(samples) != req.k:
        raise ValueError(f"request {req.id} asked for {req.k} samples, got {len(samples)}")
    if "event_time" in req.metadata:
        t = parse_event_time(req.metadata["event_time"])
    else:
        t = time.time() if now is None else now
    prompt = req.last_user_turn()
    out = []
    for i, s in enumerate(samples):
        meta = {k: v for k, v in req.metadata.items() if k != "event_time"}
        meta.update(request_id=req.id, sample_index=i, step=req.step, temperature=req.temperature,
                    top_p=req.top_p, seed=req.seed, backend=backend, model=model)
        if s.tokens is not None:
            meta["tokens"] = s.tokens
        if s.finish_reason is not None:
            meta["finish_reason"] = s.finish_reason
        out.append(ResponseEvent(id=f"{req.id}/{i}", monitor_key=req.monitor_key, event_time=t, prompt=prompt,
                                 response=s.text, metadata=meta))
    return out

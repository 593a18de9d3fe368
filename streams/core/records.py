"""Typed records for every topic: the single definition of what travels on the wire.

All records are JSON objects with a ``schema_version`` field. Event times are
seconds since the Unix epoch (UTC); inputs may also give an ISO-8601 string.

>>> ev = ResponseEvent.parse_bytes(
...     b'{"id": "r1", "monitor_key": "model-a", "event_time": "2026-01-01T00:00:30Z",'
...     b' "prompt": "Hi", "response": "Hello!"}')
>>> ev.event_time
1767225630.0
>>> try:
...     ResponseEvent.parse_bytes(b'{"id": "r1", "monitor_key": "m", "prompt": "Hi"}')
... except RecordError as err:
...     print(err)
event_time: Field required; response: Field required
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1

# Event times outside [2000-01-01, 2100-01-01) are almost always unit or clock bugs.
MIN_EVENT_TIME = 946684800.0
MAX_EVENT_TIME = 4102444800.0

MetadataValue = str | int | float | bool | None


class RecordError(ValueError):
    """A message that does not match its record schema; the text says which fields and why."""


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "record"
        parts.append(f"{loc}: {e['msg']}")
    more = len(err.errors()) - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse_event_time(value: Any) -> float:
    """Return epoch seconds from a number or an ISO-8601 string; raise ValueError when out of range.

    >>> parse_event_time("2026-01-01T00:00:00+00:00")
    1767225600.0
    >>> parse_event_time(1767225600)
    1767225600.0
    """
    if isinstance(value, bool):
        raise ValueError("event_time must be epoch seconds or an ISO-8601 string, not a boolean")
    if isinstance(value, (int, float)):
        t = float(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"event_time {value[:40]!r} is not an ISO-8601 time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        t = dt.timestamp()
    else:
        raise ValueError("event_time must be epoch seconds or an ISO-8601 string")
    if not math.isfinite(t) or not (MIN_EVENT_TIME <= t < MAX_EVENT_TIME):
        raise ValueError(f"event_time {t!r} is outside 2000-01-01..2100-01-01 (epoch seconds expected)")
    return t


TICK_KEY = "tick"  # idle-close ticks the worker sends itself on the classified topic: not records


def tick_payload(now: float) -> bytes:
    """The value of a tick message.

    >>> is_tick(tick_payload(1.0)), is_tick(b'{"id": "x"}')
    (True, False)
    """
    return json.dumps({TICK_KEY: now}).encode()


def is_tick(raw: bytes) -> bool:
    """Whether a message on the classified topic is a tick rather than a classified response."""
    return raw.startswith(b'{"' + TICK_KEY.encode())


PACKED_MESSAGE_BYTES = 256 * 1024  # most bytes of JSON Lines the classify stage packs into one message


def pack_lines(records: list[bytes], max_bytes: int = PACKED_MESSAGE_BYTES) -> list[bytes]:
    r"""Join JSON records into as few JSON Lines messages as fit ``max_bytes`` (a longer record goes alone).

    The classify stage sends a poll's records for one monitor key this way: per-message costs in
    Kafka clients and in Faust then fall on a batch, not on every response.

    >>> pack_lines([b'{"a":1}', b'{"b":2}', b'{"c":3}'], max_bytes=16)
    [b'{"a":1}\n{"b":2}', b'{"c":3}']
    """
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for rec in records:
        if chunk and size + 1 + len(rec) > max_bytes:
            out.append(b"\n".join(chunk))
            chunk, size = [], 0
        size += len(rec) + (1 if chunk else 0)
        chunk.append(rec)
    if chunk:
        out.append(b"\n".join(chunk))
    return out


def message_problem(raw: bytes | None, max_bytes: int) -> str | None:
    r"""Why an input message cannot be read at all, or None: the one check the worker and ``replay --topic`` share.

    >>> message_problem(b"", 100), message_problem(b"x" * 200, 100)
    ('empty message', 'message of 200 bytes exceeds max_message_bytes=100')
    >>> message_problem(b'{"monitor_key": "sim-\xff"}', 100)
    'not UTF-8 text (invalid byte 0xff at position 21)'
    """
    if not raw:
        return "empty message"
    if len(raw) > max_bytes:
        return f"message of {len(raw)} bytes exceeds max_message_bytes={max_bytes}"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not UTF-8 text (invalid byte 0x{raw[err.start]:02x} at position {err.start})"
    return None


def split_lines(value: bytes) -> list[bytes]:
    r"""The records of a message: its non-blank lines (one, for a message holding a single JSON object).

    >>> split_lines(b'{"a":1}\n\n{"b":2}\n')
    [b'{"a":1}', b'{"b":2}']
    """
    return [line for line in value.split(b"\n") if line.strip()]


def format_time(t: float) -> str:
    """Return an epoch time as an ISO-8601 UTC string.

    >>> format_time(1767225600.0)
    '2026-01-01T00:00:00Z'
    """
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_id(monitor_key: str, window_start: float, window_end: float) -> str:
    """The deterministic id of a key's window: ``key@start/length``, the same live and in every replay.

    >>> window_id("model-a", 1767225600.0, 1767225660.0)
    'model-a@2026-01-01T00:00:00Z/60s'
    >>> window_id("m", 1767225601.5, 1767225603.0)
    'm@2026-01-01T00:00:01.500Z/1.5s'
    """
    start = format_time(window_start)
    millis = round(window_start * 1000) % 1000
    if millis:
        start = f"{start[:-1]}.{millis:03d}Z"
    return f"{monitor_key}@{start}/{round(window_end - window_start, 3):g}s"


class Record(BaseModel):
    """Base of every wire record: strict JSON, versioned, immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    topic_role: ClassVar[str] = ""

    schema_version: Literal[1] = SCHEMA_VERSION

    @classmethod
    def parse_bytes(cls, raw: bytes | str) -> Any:
        """Parse one JSON message; raise RecordError with a one-line reason when it does not fit."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as err:
            raise RecordError(_explain(err)) from None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class _Timed(Record):
    @field_validator("event_time", mode="before", check_fields=False)
    @classmethod
    def _event_time(cls, v: Any) -> float:
        return parse_event_time(v)


class ResponseEvent(_Timed):
    """One (prompt, response) pair observed for a monitored key: the input of the pipeline."""

    topic_role: ClassVar[str] = "responses"
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=512, description="unique id of the response")
    monitor_key: str = Field(
        min_length=1, max_length=256, description="what is monitored: a model, deployment, tenant or probe"
    )
    event_time: float = Field(description="when the response was produced, epoch seconds UTC")
    prompt: str = Field(description="the user's prompt (last human turn)")
    response: str = Field(description="the assistant's response")
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class ChatMessage(BaseModel):
    """One turn of a conversation, in the OpenAI chat-completions shape."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class ProbeRequest(Record):
    """A request to the sampler: k sampled responses to one prompt (or conversation) at one step.

    Exactly one of ``prompt`` and ``messages`` is given; a conversation ends with a user turn.
    ``temperature`` 0 means greedy decoding. With a ``seed`` the samples are reproducible (see the
    sampler's README section for what is guaranteed); without one the sampler picks a seed and reports
    it in each response's metadata.

    >>> r = ProbeRequest.parse_bytes(b'{"id": "q1", "monitor_key": "m", "step": 0, "prompt": "Hi", "k": 3}')
    >>> r.k, r.temperature, r.conversation()
    (3, 0.7, [{'role': 'user', 'content': 'Hi'}])
    >>> try:
    ...     ProbeRequest.parse_bytes(b'{"id": "q1", "monitor_key": "m", "step": 0}')
    ... except RecordError as err:
    ...     print(err)
    record: Value error, give exactly one of prompt and messages
    """

    topic_role: ClassVar[str] = "prompts"

    id: str = Field(min_length=1, max_length=480, description="unique id of the request")
    monitor_key: str = Field(min_length=1, max_length=256, description="monitor key of the responses")
    step: int = Field(ge=0, description="probe step (time index of the monitored process)")
    prompt: str | None = Field(default=None, description="a single user prompt")
    messages: list[ChatMessage] | None = Field(default=None, min_length=1,
                                               description="a conversation ending with a user turn")
    k: int = Field(default=1, ge=1, le=1000, description="number of samples")
    temperature: float = Field(default=0.7, ge=0.0, le=10.0, description="sampling temperature (0 = greedy)")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    max_new_tokens: int = Field(default=256, ge=1, le=4096)
    seed: int | None = Field(default=None, ge=0, lt=2**63, description="makes the samples reproducible")
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_input(self) -> ProbeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt and messages")
        if self.messages is not None and self.messages[-1].role != "user":
            raise ValueError("messages must end with a user turn")
        return self

    def conversation(self) -> list[dict[str, str]]:
        """The request as chat messages (a bare prompt is one user turn)."""
        if self.messages is None:
            return [{"role": "user", "content": self.prompt or ""}]
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def last_user_turn(self) -> str:
        return self.conversation()[-1]["content"]


class ClassifiedResponse(_Timed):
    """A response event with its behavioural category and class probabilities.

    On the ``classified`` topic several travel in one message as JSON Lines (``pack_lines``).
    """

    topic_role: ClassVar[str] = "classified"

    id: str
    monitor_key: str
    event_time: float
    category: str = Field(description="the most probable category code")
    probs: dict[str, float] = Field(description="class probabilities by category code")
    model_version: str = Field(min_length=1, max_length=256, description="the classifier that labelled it")
    source_partition: int | None = Field(default=None, description="partition of the input message")
    source_offset: int | None = Field(default=None, description="offset of the input message")
    source_index: int = Field(default=0, ge=0, description="position of this event among those of its input "
                                                            "message (formats with several events per message)")

    @classmethod
    def labelled(cls, ev: ResponseEvent, probs: Sequence[float], codes: Sequence[str], model_version: str,
                 **source: Any) -> ClassifiedResponse:
        """``ev`` as a classifier labels it: the first most probable code, and every probability by code.
        ``source``: ``source_partition``, ``source_offset``, ``source_index``. The worker and the offline
        pipeline both label events here, so the classified topic and ``replay --classified`` agree.

        >>> ev = ResponseEvent(id="r1", monitor_key="k", event_time=1767225600, prompt="p", response="r")
        >>> c = ClassifiedResponse.labelled(ev, [0.2, 0.5, 0.3], ["g1", "g2", "g3"], "m-1")
        >>> c.category, c.probs["g3"], c.source_index
        ('g2', 0.3, 0)
        """
        best = max(range(len(codes)), key=lambda i: probs[i])  # the first of equal maxima, as numpy's argmax
        return cls(id=ev.id, monitor_key=ev.monitor_key, event_time=ev.event_time, category=codes[best],
                   probs={c: float(p) for c, p in zip(codes, probs, strict=True)}, model_version=model_version,
                   **source)


class WindowStatistic(Record):
    """Entropy of one closed event-time window for one key, emitted once when the window closes."""

    topic_role: ClassVar[str] = "entropy"

    id: str = Field(description="deterministic window id, key@start/length (records.window_id): consumers "
                                "de-duplicate re-sent windows by it")
    monitor_key: str
    window_start: float
    window_end: float
    n: int
    counts: dict[str, int]
    mean_probs: dict[str, float] = Field(description="mean classifier probability per category")
    entropy: float = Field(description="plug-in entropy S in nats")
    entropy_se: float = Field(description="delta-method standard error of S")
    entropy_mm: float = Field(description="Miller–Madow bias-corrected entropy in nats")
    entropy_soft: float | None = Field(default=None, description="entropy of the mean class probabilities")
    entropy_corrected: float | None = Field(
        default=None, description="entropy of the category mix corrected for the classifier's confusion matrix "
                                  "(measured on held-out data; absent when the classifier has none)")
    delta_entropy: float | None = Field(description="S minus S of the key's previous window")
    delta_se: float | None
    prev_window_start: float | None
    closed_by: Literal["watermark", "idle", "flush"]
    examples: dict[str, list[str]] = Field(
        default_factory=dict, description="per category, up to a few event ids of this window (the lowest SHA-256 "
                                          "of the id, so the same live and in any replay): what alerts point at")
    insufficient: bool = Field(
        default=False, description="fewer responses than the alert rules' min_n: too few to judge alone, so the "
                                   "rules judge it merged with the key's next windows (a block)")
    classifier_versions: list[str] = Field(
        default_factory=list, description="model_version of the classifier(s) that labelled this window's events, "
                                          "sorted (empty when the events carried none)")
    classifier_changed: bool = Field(
        default=False, description="true when classifier_versions differ from the key's previous window's: S moved "
                                   "with the classifier, so the alert rules start the key's series afresh here")

    @model_validator(mode="before")
    @classmethod
    def _window_id(cls, data: Any) -> Any:
        """Fill in the id from the key and the window when it is not given (it is always on the wire)."""
        if isinstance(data, dict) and "id" not in data and {"monitor_key", "window_start", "window_end"} <= set(data):
            with contextlib.suppress(TypeError, ValueError, OverflowError):  # the field validators name a bad value
                data = {**data, "id": window_id(data["monitor_key"], float(data["window_start"]),
                                                float(data["window_end"]))}
        return data

    @model_validator(mode="after")
    def _id_matches(self) -> WindowStatistic:
        expected = window_id(self.monitor_key, self.window_start, self.window_end)
        if self.id != expected:
            raise ValueError(f"id {self.id!r} does not match the key and window (expected {expected!r})")
        return self

    @property
    def alert_prefix(self) -> str:
        """What alert ids start with: key@start (without the window length, as before window ids existed)."""
        return self.id.rsplit("/", 1)[0]


class Alert(Record):
    """A rule that fired on a window statistic, with the evidence that made it fire."""

    topic_role: ClassVar[str] = "alerts"

    id: str = Field(description="deterministic: key, window start and rule")
    monitor_key: str
    window_start: float
    window_end: float
    rule: str
    statistic: float
    threshold: float
    p_value: float | None = None
    severity: Literal["info", "warning", "critical"]
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class DeadLetter(Record):
    """A message that could not be processed, with the reason and where it came from.

    The payload is kept whole (base64) up to ``KEEP_BYTES``; a larger one keeps its first ``KEEP_BYTES``
    with its size and SHA-256, and the source topic, partition and offset locate the original.

    >>> d = DeadLetter.of(b"x" * 600_000, "t", 0, 7, "classify", "too big")
    >>> d.truncated, d.payload_bytes, len(base64.b64decode(d.payload_b64)) == DeadLetter.KEEP_BYTES
    (True, 600000, True)
    """

    topic_role: ClassVar[str] = "deadletter"
    KEEP_BYTES: ClassVar[int] = 256 * 1024

    payload_b64: str
    payload_bytes: int = Field(description="size of the original message value")
    payload_sha256: str = Field(description="SHA-256 (hex) of the original message value")
    truncated: bool = Field(description="true when payload_b64 holds only the first KEEP_BYTES bytes")
    topic: str
    partition: int
    offset: int
    stage: str
    reason: str

    @classmethod
    def of(cls, raw: bytes | None, topic: str, partition: int, offset: int, stage: str, reason: str) -> DeadLetter:
        raw = raw or b""
        return cls(
            payload_b64=base64.b64encode(raw[: cls.KEEP_BYTES]).decode(),
            payload_bytes=len(raw),
            payload_sha256=hashlib.sha256(raw).hexdigest(),
            truncated=len(raw) > cls.KEEP_BYTES,
            topic=topic,
            partition=partition,
            offset=offset,
            stage=stage,
            reason=reason[:2000],
        )


class LateEvent(Record):
    """A classified response that arrived after its window had closed."""

    topic_role: ClassVar[str] = "late"

    record: ClassifiedResponse
    window_start: float
    closed_until: float = Field(description="end of the key's latest closed window")


RECORD_TYPES: tuple[type[Record], ...] = (
    ProbeRequest,
    ResponseEvent,
    ClassifiedResponse,
    WindowStatistic,
    Alert,
    DeadLetter,
    LateEvent,
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of every record, by file name."""
    out = {}
    for rt in RECORD_TYPES:
        schema = rt.model_json_schema()
        schema["$id"] = f"valuedrift/{rt.__name__}/v{SCHEMA_VERSION}"
        schema["x-topic"] = rt.topic_role
        out[f"{rt.__name__}.schema.json"] = schema
    return out


def dump_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"

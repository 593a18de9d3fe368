"""Input adapters: map existing chat-log formats onto ``ResponseEvent`` (pure; no Kafka, no I/O).

Formats (``FORMATS``):

- ``own``: the project's own record (``ResponseEvent`` JSON; extra fields are ignored).
- ``openai``: an OpenAI chat-completions log line. The completion (``choices``) is looked for in the
  record itself, in ``response`` or in ``response.body`` (Batch API output); the request's
  ``messages`` in the record, ``request``, ``body`` or ``request.body``. Each choice is one event
  with id ``<id>#<choice index>`` and its response ``choices[i].message.content``; the prompt is the
  last ``user`` message. Without ``choices``, the last ``assistant`` message of ``messages`` is the
  response (earlier assistant messages are history, logged with their own requests) and the id is
  ``<id>``. Monitor key ``model``, event time ``created``, id ``id`` (else ``custom_id``).
  Content given as a list of parts keeps its text parts, joined by newlines; a choice without text
  (tool calls only) gives an empty response. Here ``prompt=PATH`` and ``response=PATH`` of a field
  map point at the messages list and the choices list.
- ``transcript``: a ``Human:`` / ``Assistant:`` transcript, either a JSON string or an object with
  the transcript at ``transcript``. Each assistant turn is paired with the human turn before it; the
  n-th assistant turn (1-based) gets id ``<id>#<n>``. In hh-rlhf style text (turns separated by a
  blank line: ``\\n\\nHuman:``) only such markers start a turn, with the parser that reads the labelled data
  (``valuedrift.classifier.transcripts``); otherwise a turn starts where a line starts with ``Human:`` or
  ``Assistant:``.
- ``context_turns`` (``transcript`` and ``openai``; default 0): that many earlier turns are appended to
  the prompt, most recent first, in the format ``valuedrift.classifier.context`` defines, for a classifier trained
  with the same number (``valuedrift classifier prepare --context-turns N``).
- ``mapped``: any JSON object, through a ``FieldMap`` of dotted paths (``a.b.0.c``; integers index
  lists, negative from the end; a key that itself contains dots is matched whole first).

Field paths can be overridden in every format but ``own`` (``FieldMap``, ``parse_map``). When a
record has no id, the reader's ``fallback_id`` (e.g. ``file.jsonl:12``) is used; a missing monitor
key or event time falls back to ``AdapterConfig.default_key`` / ``default_time`` when those are set
(a replay assigns ``start + record number × step``); otherwise the record is rejected.
Event times are epoch seconds (numbers or numeric strings), ISO-8601 strings or ``datetime`` values.

Every failure raises ``AdapterError`` (a ``RecordError``, so a ``ValueError``) whose message starts
with the field it is about; nothing else is raised, whatever the JSON.

>>> cfg = AdapterConfig("transcript", default_key="hh", default_time=1767225600.0)
>>> evs = adapt({"id": "d1", "transcript": "\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: bye\\n\\nAssistant: ok"},
...             cfg)
>>> [(e.id, e.prompt, e.response) for e in evs]
[('d1#1', 'hi', 'hello'), ('d1#2', 'bye', 'ok')]
>>> mapped = AdapterConfig("mapped", FieldMap(prompt="a.q", response="a.r", event_time="t"), default_key="m")
>>> try:
...     adapt({"a": {"q": "Hi"}, "t": 1767225600}, mapped, "log.jsonl:1")
... except AdapterError as err:
...     print(err)
response: no value at 'a.r' (no key 'r')
"""

from __future__ import annotations

import contextlib
import json
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from valuedrift.classifier.context import with_context
from valuedrift.classifier.transcripts import answered_turns
from valuedrift.streams.core.records import MetadataValue, RecordError, ResponseEvent, parse_event_time

FORMATS = ("own", "openai", "transcript", "mapped")
FIELDS = ("id", "monitor_key", "event_time", "prompt", "response", "transcript")


class AdapterError(RecordError):
    """A record that the chosen input format cannot map; the message starts with the field's name."""


_MISSING = object()


@dataclass(frozen=True)
class FieldMap:
    """Dotted paths of the fields in an input record; ``None`` means the format's default."""

    id: str | None = None
    monitor_key: str | None = None
    event_time: str | None = None
    prompt: str | None = None
    response: str | None = None
    transcript: str | None = None

    def merged(self, other: FieldMap) -> FieldMap:
        """Return this map with every path that ``other`` sets replaced by ``other``'s."""
        return replace(self, **{f.name: getattr(other, f.name) for f in fields(other)
                                if getattr(other, f.name) is not None})

    def as_dict(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def parse_map(text: str) -> FieldMap:
    """Parse ``id=a.b,prompt=q.text`` into a ``FieldMap``; raise AdapterError naming a bad entry.

    >>> parse_map("id=meta.uuid, prompt=input.text").as_dict()
    {'id': 'meta.uuid', 'prompt': 'input.text'}
    """
    values: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, path = part.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not path:
            raise AdapterError(f"map: {part.strip()!r} is not FIELD=PATH (e.g. prompt=request.text)")
        _check_name(name)
        values[name] = path
    return FieldMap(**values)


def load_map(path: str | Path) -> FieldMap:
    """Read a field map from a JSON or TOML file: ``{"id": "a.b", "prompt": "...", ...}``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise AdapterError(f"map: cannot read {p}: {err.strerror or err}") from None
    try:
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise AdapterError(f"map: {p} is not valid {'TOML' if p.suffix.lower() == '.toml' else 'JSON'}: "
                           f"{err}") from None
    if not isinstance(data, dict):
        raise AdapterError(f"map: {p} must hold an object of FIELD: PATH")
    for name, value in data.items():
        _check_name(name)
        if not isinstance(value, str) or not value.strip():
            raise AdapterError(f"map: {name} in {p} must be a non-empty string path")
    return FieldMap(**{k: v.strip() for k, v in data.items()})


def _check_name(name: str) -> None:
    if name not in FIELDS:
        raise AdapterError(f"map: unknown field {name!r}; use {', '.join(FIELDS)}")


@dataclass(frozen=True)
class AdapterConfig:
    """An input format, its field-path overrides, and the fallbacks for a missing key or event time."""

    format: str = "own"
    fields: FieldMap = FieldMap()
    default_key: str | None = None
    default_time: float | None = None
    context_turns: int = 0  # transcript / openai: earlier turns appended to the prompt (valuedrift.classifier.context)

    def __post_init__(self) -> None:
        if isinstance(self.context_turns, bool) or not isinstance(self.context_turns, int) or self.context_turns < 0:
            raise AdapterError(f"context_turns: must be a whole number >= 0, got {self.context_turns!r}")
        if self.format not in FORMATS:
            raise AdapterError(f"format: unknown input format {self.format!r}; use {', '.join(FORMATS)}")
        if self.format == "mapped" and (self.fields.prompt is None or self.fields.response is None) \
                and self.fields.transcript is None:
            raise AdapterError("map: the mapped format needs prompt=PATH and response=PATH (or transcript=PATH)")


# ---------------------------------------------------------------- paths and values


def get_path(obj: Any, path: str) -> tuple[Any, str]:
    """Return (value, "") at a dotted path, or (_MISSING, why) when there is none."""
    if isinstance(obj, dict) and path in obj:
        return obj[path], ""
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                return _MISSING, f"no key {part!r}"
            cur = cur[part]
        elif isinstance(cur, list):
            try:
                i = int(part)
            except ValueError:
                return _MISSING, f"{part!r} is not a list index"
            if not -len(cur) <= i < len(cur):
                return _MISSING, f"index {i} is out of range (length {len(cur)})"
            cur = cur[i]
        else:
            return _MISSING, f"{part!r} is under a {_kind(cur)}, not an object"
    return cur, ""


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _first(obj: Any, paths: tuple[str, ...]) -> tuple[Any, str | None]:
    """Return (value, path) of the first path present, or (_MISSING, None)."""
    for p in paths:
        v, _ = get_path(obj, p)
        if v is not _MISSING:
            return v, p
    return _MISSING, None


def _text(value: Any, name: str, where: str) -> str:
    if isinstance(value, str):
        return value
    raise AdapterError(f"{name}: expected a string at {where!r}, got {_kind(value)}")


def _ident(value: Any, name: str, where: str) -> str:
    """Ids and keys: strings, or integers written as strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise AdapterError(f"{name}: expected a string at {where!r}, got {_kind(value)}")


def to_event_time(value: Any, where: str = "event_time") -> float:
    """Return epoch seconds from a number, a numeric or ISO-8601 string, or a datetime; raise AdapterError.

    >>> to_event_time("1767225600"), to_event_time("2026-01-01T00:00:00Z")
    (1767225600.0, 1767225600.0)
    """
    try:
        if isinstance(value, datetime):
            value = value.timestamp()
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value.strip())
        return parse_event_time(value)
    except (ValueError, OverflowError, TypeError) as err:
        at = "" if where == "event_time" else f" (at {where!r})"
        raise AdapterError(f"event_time: {str(err).removeprefix('event_time ')}{at}") from None


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "record"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _event(**kw: Any) -> ResponseEvent:
    try:
        return ResponseEvent(**kw)
    except ValidationError as err:
        raise AdapterError(_explain(err)) from None


# ---------------------------------------------------------------- common fields


@dataclass(frozen=True)
class _Paths:
    id: tuple[str, ...]
    monitor_key: tuple[str, ...]
    event_time: tuple[str, ...]


def _paths(cfg: AdapterConfig, defaults: _Paths) -> _Paths:
    f = cfg.fields
    return _Paths(
        id=(f.id,) if f.id else defaults.id,
        monitor_key=(f.monitor_key,) if f.monitor_key else defaults.monitor_key,
        event_time=(f.event_time,) if f.event_time else defaults.event_time,
    )


def _common(obj: Any, cfg: AdapterConfig, paths: _Paths, fallback_id: str | None) -> tuple[str, str, float]:
    """Return (id, monitor key, event time) of a record, with the configured fallbacks."""
    v, p = _first(obj, paths.id)
    if v is _MISSING or v is None:
        if fallback_id is None:
            raise AdapterError(f"id: missing (looked at {', '.join(map(repr, paths.id))})")
        rid = fallback_id
    else:
        rid = _ident(v, "id", p or "")
    v, p = _first(obj, paths.monitor_key)
    if v is _MISSING or v is None:
        if cfg.default_key is None:
            raise AdapterError(f"monitor_key: missing (looked at {', '.join(map(repr, paths.monitor_key))}; "
                               f"map it or give a default key)")
        key = cfg.default_key
    else:
        key = _ident(v, "monitor_key", p or "")
    v, p = _first(obj, paths.event_time)
    if v is _MISSING or v is None:
        if cfg.default_time is None:
            raise AdapterError(f"event_time: missing (looked at {', '.join(map(repr, paths.event_time))}; "
                               f"map it or assign times)")
        t = cfg.default_time
    else:
        t = to_event_time(v, p or "event_time")
    return rid, key, t


# ---------------------------------------------------------------- formats


def _own(obj: Any, cfg: AdapterConfig, fallback_id: str | None) -> list[ResponseEvent]:
    if not isinstance(obj, dict):
        raise AdapterError(f"record: expected a JSON object, got {_kind(obj)}")
    data = dict(obj)
    if "schema_version" in data and data["schema_version"] != 1:
        raise AdapterError(f"schema_version: {data['schema_version']!r} is not supported (expected 1)")
    data.pop("schema_version", None)
    if data.get("monitor_key") is None and cfg.default_key is not None:
        data["monitor_key"] = cfg.default_key
    et = data.get("event_time")
    if et is None:
        if cfg.default_time is not None:
            data["event_time"] = cfg.default_time
    else:
        data["event_time"] = to_event_time(et)
    meta = data.get("metadata")
    if isinstance(meta, str):  # a CSV column
        try:
            data["metadata"] = json.loads(meta) if meta.strip() else {}
        except ValueError:
            raise AdapterError("metadata: not a JSON object") from None
    try:
        return [ResponseEvent.model_validate(data)]
    except ValidationError as err:
        raise AdapterError(_explain(err)) from None


_OPENAI_COMMON = _Paths(id=("id", "response.body.id", "response.id", "custom_id"),
                        monitor_key=("model", "response.body.model", "response.model", "request.model",
                                     "body.model", "request.body.model"),
                        event_time=("created", "response.body.created", "response.created"))
_OPENAI_CHOICES = ("choices", "response.body.choices", "response.choices")
_OPENAI_MESSAGES = ("messages", "request.messages", "body.messages", "request.body.messages")


def _content(msg: Any, where: str) -> str:
    """The text of a chat message: a string, a list of parts (text parts joined), or null (no text)."""
    if not isinstance(msg, dict):
        raise AdapterError(f"messages: expected an object at {where!r}, got {_kind(msg)}")
    c = msg.get("content")
    if c is None:
        return ""
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        texts = []
        for part in c:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    raise AdapterError(f"messages: content at {where!r} is a {_kind(c)}, not text")


def _role(msg: Any) -> Any:
    return msg.get("role") if isinstance(msg, dict) else None


def _openai(obj: Any, cfg: AdapterConfig, fallback_id: str | None) -> list[ResponseEvent]:
    if not isinstance(obj, dict):
        raise AdapterError(f"record: expected a JSON object, got {_kind(obj)}")
    rid, key, t = _common(obj, cfg, _paths(cfg, _OPENAI_COMMON), fallback_id)
    f = cfg.fields
    mpaths = (f.prompt,) if f.prompt else _OPENAI_MESSAGES
    messages, mpath = _first(obj, mpaths)
    if messages is _MISSING:
        raise AdapterError(f"messages: missing (looked at {', '.join(map(repr, mpaths))})")
    if not isinstance(messages, list):
        raise AdapterError(f"messages: expected a list at {mpath!r}, got {_kind(messages)}")
    choices, cpath = _first(obj, (f.response,) if f.response else _OPENAI_CHOICES)
    if choices is _MISSING or choices is None:
        last = max((i for i, m in enumerate(messages) if _role(m) == "assistant"), default=None)
        if last is None:
            raise AdapterError("choices: missing, and messages has no assistant message")
        prompt = _last_user(messages[:last], mpath or "messages", cfg.context_turns)
        return [_event(id=rid, monitor_key=key, event_time=t, prompt=prompt,
                       response=_content(messages[last], f"{mpath}.{last}"))]
    if not isinstance(choices, list) or not choices:
        raise AdapterError(f"choices: expected a non-empty list at {cpath!r}, got "
                           f"{'an empty list' if choices == [] else _kind(choices)}")
    prompt = _last_user(messages, mpath or "messages", cfg.context_turns)
    out = []
    for pos, ch in enumerate(choices):
        if not isinstance(ch, dict):
            raise AdapterError(f"choices: expected an object at '{cpath}.{pos}', got {_kind(ch)}")
        idx = ch.get("index", pos)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise AdapterError(f"choices: index at '{cpath}.{pos}.index' must be an integer, got {_kind(idx)}")
        msg = ch.get("message")
        if msg is None and isinstance(ch.get("text"), str):  # legacy completions
            response = ch["text"]
        elif msg is None:
            raise AdapterError(f"choices: no message at '{cpath}.{pos}.message'")
        else:
            response = _content(msg, f"{cpath}.{pos}.message")
        meta: dict[str, MetadataValue] = {}
        if isinstance(ch.get("finish_reason"), str):
            meta["finish_reason"] = ch["finish_reason"]
        out.append(_event(id=f"{rid}#{idx}", monitor_key=key, event_time=t, prompt=prompt, response=response,
                          metadata=meta))
    return out


def _last_user(messages: list[Any], where: str, context_turns: int = 0) -> str:
    """The last user message, followed by ``context_turns`` earlier user/assistant messages when asked."""
    for i in range(len(messages) - 1, -1, -1):
        if _role(messages[i]) == "user":
            earlier = [] if context_turns == 0 else [
                ("Human" if _role(m) == "user" else "Assistant", _content(m, f"{where}.{j}"))
                for j, m in enumerate(messages[:i]) if _role(m) in ("user", "assistant")]
            return with_context(_content(messages[i], f"{where}.{i}"), earlier, context_turns)
    raise AdapterError(f"messages: no user message before the response (at {where!r})")


_TRANSCRIPT_COMMON = _Paths(id=("id",), monitor_key=("monitor_key",), event_time=("event_time",))


def transcript_pairs(text: str) -> list[tuple[str, str]]:
    """Return (human turn, assistant turn) for every assistant turn that has a human turn before it.

    >>> transcript_pairs("Human: a\\nAssistant: b\\nAssistant: c\\nHuman: d")
    [('a', 'b'), ('a', 'c')]
    """
    return [(human, answer) for human, answer, _ in answered_turns(text)]


def _transcript(obj: Any, cfg: AdapterConfig, fallback_id: str | None) -> list[ResponseEvent]:
    if isinstance(obj, str):
        text, where = obj, "record"
        rid, key, t = _common({}, cfg, _paths(cfg, _TRANSCRIPT_COMMON), fallback_id)
    elif isinstance(obj, dict):
        path = cfg.fields.transcript or "transcript"
        v, why = get_path(obj, path)
        if v is _MISSING:
            raise AdapterError(f"transcript: no value at {path!r} ({why})")
        text, where = _text(v, "transcript", path), path
        rid, key, t = _common(obj, cfg, _paths(cfg, _TRANSCRIPT_COMMON), fallback_id)
    else:
        raise AdapterError(f"record: expected a transcript string or a JSON object, got {_kind(obj)}")
    pairs = answered_turns(text)
    if not pairs:
        raise AdapterError(f"transcript: no Assistant: turn after a Human: turn at {where!r}")
    return [_event(id=f"{rid}#{n}", monitor_key=key, event_time=t, response=r,
                   prompt=with_context(p, earlier, cfg.context_turns))
            for n, (p, r, earlier) in enumerate(pairs, start=1)]


_MAPPED_COMMON = _Paths(id=("id",), monitor_key=("monitor_key",), event_time=("event_time",))


def _mapped(obj: Any, cfg: AdapterConfig, fallback_id: str | None) -> list[ResponseEvent]:
    if not isinstance(obj, dict):
        raise AdapterError(f"record: expected a JSON object, got {_kind(obj)}")
    f = cfg.fields
    if f.prompt is None or f.response is None:
        return _transcript(obj, cfg, fallback_id)
    rid, key, t = _common(obj, cfg, _paths(cfg, _MAPPED_COMMON), fallback_id)
    texts = {}
    for name, path in (("prompt", f.prompt), ("response", f.response)):
        v, why = get_path(obj, path)
        if v is _MISSING:
            raise AdapterError(f"{name}: no value at {path!r} ({why})")
        texts[name] = _text(v, name, path)
    return [_event(id=rid, monitor_key=key, event_time=t, **texts)]


_ADAPTERS: dict[str, Callable[[Any, AdapterConfig, str | None], list[ResponseEvent]]] = {
    "own": _own, "openai": _openai, "transcript": _transcript, "mapped": _mapped,
}


def detect_format(obj: Any) -> str | None:
    """The input format a decoded record looks like: ``classified``, ``own``, ``openai`` or ``transcript``; None
    when none fits (then ``--format mapped`` with ``--map`` reads it).

    >>> detect_format({"id": "1", "monitor_key": "m", "event_time": 0, "prompt": "p", "response": "r"})
    'own'
    >>> detect_format({"messages": [{"role": "user", "content": "hi"}], "choices": []})
    'openai'
    >>> detect_format("Human: hi\\nAssistant: hello"), detect_format({"question": "q", "answer": "a"})
    ('transcript', None)
    """
    if isinstance(obj, str):
        return "transcript" if "Human:" in obj and "Assistant:" in obj else None
    if not isinstance(obj, dict):
        return None
    if "category" in obj and "probs" in obj:
        return "classified"
    if "prompt" in obj and "response" in obj:
        return "own"
    if "choices" in obj or any(get_path(obj, p)[0] is not _MISSING for p in _OPENAI_MESSAGES):
        return "openai"
    if isinstance(obj.get("transcript"), str):
        return "transcript"
    if {"id", "monitor_key", "event_time", "prompt", "response"} & set(obj):
        return "own"  # an own record with fields missing: its parser says which
    return None


def adapt(obj: Any, cfg: AdapterConfig, fallback_id: str | None = None) -> list[ResponseEvent]:
    """Map one decoded input record onto response events; raise AdapterError (only) when it cannot.

    ``fallback_id`` is the id to use when the record has none (``own`` records must carry theirs).
    """
    try:
        return _ADAPTERS[cfg.format](obj, cfg, fallback_id)
    except AdapterError:
        raise
    except RecursionError:
        raise AdapterError("record: nested too deeply") from None


def adapt_bytes(raw: bytes | str, cfg: AdapterConfig, fallback_id: str | None = None) -> list[ResponseEvent]:
    """Decode one JSON message and adapt it; invalid JSON raises AdapterError too."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise AdapterError(f"record: invalid JSON: {err}") from None
    if isinstance(obj, float) and not math.isfinite(obj):
        raise AdapterError("record: expected a JSON object, got number")
    return adapt(obj, cfg, fallback_id)

"""Audit replay: read logged events (files or a Kafka topic), run the offline pipeline, write reproducible JSON.

The pipeline is ``valuedrift.streams.offline`` — the same classifier, event-time windows, estimators and alert
rules as the stream worker — so a replay needs no broker. Events are replayed in event-time order
(a stable sort; ``order="input"`` keeps the file order, which reproduces a live run's late events).

The JSON result is canonical: sorted keys, floats rounded to 12 significant digits, no wall-clock
times and no absolute paths, so the same input and settings give byte-identical output on every run.

Reading a topic starts at the beginning of every partition and filters by event time: the embedded
broker's ``offsets_for_times`` (ListOffsets by timestamp) is wrong, and event time is what windows
use anyway; the read stops when no message arrived for ``idle`` seconds (the embedded broker's end
offsets are not reliable either).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import gzip
import hashlib
import io
import json
import math
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from valuedrift.streams.adapters import AdapterConfig, AdapterError, FieldMap, adapt, detect_format
from valuedrift.streams.core.clock import DEFAULT_MAX_SKEW_SECONDS, ahead_reason
from valuedrift.streams.core.pipeline import RecordRefused
from valuedrift.streams.core.rates import (
    Estimate,
    effective_alignment_work,
    slope_estimate,
    suppression,
    variance_shares,
)
from valuedrift.streams.core.records import (
    ClassifiedResponse,
    ResponseEvent,
    format_time,
    is_tick,
    message_problem,
    split_lines,
)
from valuedrift.streams.core.taxonomy import TAXONOMIES
from valuedrift.streams.offline import OfflineResult, run_classified, run_offline
from valuedrift.streams.settings import Settings

RESULT_SCHEMA = "valuedrift.replay/1"
INPUT_FORMATS = ("auto", "own", "openai", "transcript", "mapped", "classified")
MAX_BAD_EXAMPLES = 10
# Settings that describe where a worker runs, not what it computes: left out of the config hash.
_INFRA = {"broker", "app_id", "topic_prefix", "input_topic", "partitions", "datadir", "session_timeout_seconds",
          "log_level", "batch_within_seconds", "max_message_bytes", "idle_close_seconds", "poll_batch_size",
          "classifier"}  # the classifier is in the replay options (none for already-classified input)
# Settings in the config hash only when set: 0 is the classifier's own batch, one int8 pair per call.
_WHEN_SET = {"inference_batch_size"}


class ReplayError(ValueError):
    """Bad replay input or options; the message is one line naming the problem."""


@dataclass(frozen=True)
class ReplayOptions:
    """How to read and replay the input."""

    format: str = "auto"
    fields: FieldMap = FieldMap()
    default_key: str | None = None
    context_turns: int = 0  # transcript / openai: earlier turns appended to the prompt
    start_time: float | None = None  # assign start + record number × step to records without an event time
    time_step: float = 1.0
    time_from: float | None = None  # keep events with time_from <= event time < time_to
    time_to: float | None = None
    order: str = "time"  # or "input"
    max_clock_skew: float = DEFAULT_MAX_SKEW_SECONDS  # records further ahead of the time they are read: bad
    max_message_bytes: int = 1_000_000  # with --topic: larger messages are bad records, as the worker refuses them
    reference: str | None = None
    classifier: str = "default"

    def __post_init__(self) -> None:
        if self.format not in INPUT_FORMATS:
            raise ReplayError(f"unknown --format {self.format!r}; use {', '.join(INPUT_FORMATS)}")
        if self.context_turns < 0:
            raise ReplayError(f"--context-turns must be >= 0, got {self.context_turns}")
        if self.order not in ("time", "input"):
            raise ReplayError(f"--order must be time or input, got {self.order!r}")
        if not (self.time_step > 0 and math.isfinite(self.time_step)):
            raise ReplayError(f"--time-step must be > 0 seconds, got {self.time_step!r}")
        if not (self.max_clock_skew > 0 and math.isfinite(self.max_clock_skew)):
            raise ReplayError(f"--max-clock-skew must be > 0 seconds, got {self.max_clock_skew!r}")

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "map": self.fields.as_dict(), "default_key": self.default_key,
                "start_time": self.start_time, "time_step": self.time_step if self.start_time is not None else None,
                "from": self.time_from, "to": self.time_to, "order": self.order, "reference": self.reference,
                "classifier": self.classifier,
                **({"context_turns": self.context_turns} if self.context_turns else {}),  # older hashes stay
                **({"max_clock_skew": self.max_clock_skew} if self.max_clock_skew != DEFAULT_MAX_SKEW_SECONDS
                   else {}),
                **({"max_message_bytes": self.max_message_bytes} if self.max_message_bytes != 1_000_000 else {})}


@dataclass
class SourceSummary:
    """One input file (or topic): its identity and how many of its records were usable."""

    name: str
    sha256: str = ""
    records: int = 0
    bad: int = 0
    events: int = 0
    formats: dict[str, int] = field(default_factory=dict)  # with --format auto: records of each detected format

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ReplayInput:
    """Events read from the sources, ready to replay: either response events or classified records."""

    format: str
    sources: list[SourceSummary] = field(default_factory=list)
    events: list[ResponseEvent] = field(default_factory=list)
    classified: list[ClassifiedResponse] = field(default_factory=list)
    bad_examples: list[str] = field(default_factory=list)
    outside_range: int = 0
    kafka: dict[str, Any] | None = None

    @property
    def n_events(self) -> int:
        return len(self.classified) if self.format == "classified" else len(self.events)

    @property
    def n_bad(self) -> int:
        return sum(s.bad for s in self.sources)

    def bad(self, source: SourceSummary, where: str, reason: str) -> None:
        source.bad += 1
        if len(self.bad_examples) < MAX_BAD_EXAMPLES:
            self.bad_examples.append(f"{where}: {reason}"[:300])


# ---------------------------------------------------------------- reading


def _kind(path: Path) -> tuple[str, bool]:
    """Return (jsonl | csv | parquet, gzipped)."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    last = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if last in (".jsonl", ".json", ".ndjson"):
        return "jsonl", gz
    if last == ".csv":
        return "csv", gz
    if last in (".parquet", ".pq") and not gz:
        return "parquet", False
    raise ReplayError(f"input {path}: unknown file type; use .jsonl, .csv or .parquet (.jsonl and .csv may be .gz)")


Decoded = tuple[int, Any, str | None]  # (line or row number, decoded record, error reason)


def _lines(path: Path, gz: bool) -> io.TextIOBase:
    # bytes that are not UTF-8 become lone surrogates, so the record that holds them is refused (``_not_utf8``),
    # not the whole file, and no key is ever mangled by replacement characters
    if gz:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="surrogateescape", newline="")
    return path.open("r", encoding="utf-8", errors="surrogateescape", newline="")


def _not_utf8(*texts: Any) -> str | None:
    for text in texts:
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                return f"not UTF-8 text (invalid byte 0x{ord(text[err.start]) - 0xDC00:02x})"
    return None


CSV_FIELD_LIMIT = 16 * 2**20  # characters in one CSV field (Python's default, 128 KiB, is less than one long chat)


def read_records(path: Path) -> Iterator[Decoded]:
    """Yield (line, record, None) or (line, None, reason) for every record of a JSONL, CSV or Parquet file.

    A bad record is yielded with its reason and reading goes on; a file cut short (a truncated ``.gz``) keeps
    the records before the cut and yields one more, bad, that says so."""
    kind, gz = _kind(path)
    if kind == "parquet":
        yield from _parquet(path)
        return
    n = 0
    try:
        with _lines(path, gz) as fh:
            if kind == "csv":
                csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
                reader = csv.DictReader(fh)
                while True:
                    try:
                        row = next(reader)
                    except StopIteration:
                        return
                    except csv.Error as err:  # one malformed row; the reader goes on after it
                        n = reader.line_num
                        yield n, None, f"unreadable CSV row: {err}"
                        continue
                    n = reader.line_num
                    if None in row:
                        yield n, None, "more values than header columns"
                        continue
                    bad = _not_utf8(*row.values(), *row.keys())
                    yield (n, None, bad) if bad else (n, row, None)
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                bad = _not_utf8(line)
                yield (n, None, bad) if bad else (n, *_decode_json(line))
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        if n == 0:
            raise ReplayError(f"input {path}: cannot read: {err}") from None
        yield n + 1, None, f"the file ends early after line {n} ({err}); the records before are kept"
    except OSError as err:
        raise ReplayError(f"input {path}: cannot read: {err}") from None


def _parquet(path: Path) -> Iterator[Decoded]:
    try:
        import pyarrow.parquet as pq  # noqa: PLC0415 - optional extra
    except ImportError:
        raise ReplayError(f"input {path}: reading Parquet needs pyarrow, which is not installed "
                          f"(pip install 'valuedrift[parquet]'), or convert it to JSONL") from None
    try:
        pf = pq.ParquetFile(path)
        n = 0
        for batch in pf.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                n += 1
                yield n, row, None
    except Exception as err:  # noqa: BLE001 - pyarrow raises many types; one line names the file
        raise ReplayError(f"input {path}: cannot read Parquet: {err}") from None


class _Reader:
    """Turns decoded records into events with the chosen format; counts bad records per source."""

    def __init__(self, opts: ReplayOptions) -> None:
        self.opts = opts
        self.result = ReplayInput(format=opts.format)
        self.read_at = time.time()  # the observed time of file records: none may claim a later one (streams.core.clock)
        self.index = 0  # records seen over all sources, good or bad: the record number for assigned times
        self.adapters: dict[str, AdapterConfig] = {}

    def _config(self, fmt: str) -> AdapterConfig:
        if fmt not in self.adapters:
            try:
                self.adapters[fmt] = AdapterConfig(fmt, self.opts.fields, self.opts.default_key, None,
                                                   self.opts.context_turns)
            except AdapterError as err:
                raise ReplayError(str(err)) from None
        return self.adapters[fmt]

    def _format(self, source: SourceSummary, where: str, obj: Any) -> str | None:
        """The record's format: the one asked for, or (``auto``) the one it looks like; None for a bad record."""
        if self.opts.format != "auto":
            return self.opts.format
        fmt = detect_format(obj)
        if fmt is None:
            keys = ", ".join(sorted(map(str, obj))[:8]) if isinstance(obj, dict) else type(obj).__name__
            self.result.bad(source, where, f"no input format fits this record (it has: {keys}); read it with "
                                           f"--format mapped --map prompt=PATH,response=PATH,...")
            return None
        source.formats[fmt] = source.formats.get(fmt, 0) + 1
        if self.result.format == "auto":
            self.result.format = fmt
        if (fmt == "classified") != (self.result.format == "classified"):
            self.result.bad(source, where, f"a {fmt} record among {self.result.format} ones: classified records and "
                                           f"raw responses are replayed separately")
            return None
        return fmt

    def feed(self, source: SourceSummary, where: str, obj: Any, error: str | None, fallback_id: str) -> None:
        index = self.index
        self.index += 1
        source.records += 1
        if error is not None:
            self.result.bad(source, where, error)
            return
        fmt = self._format(source, where, obj)
        if fmt is None:
            return
        if fmt == "classified":
            self._classified(source, where, obj)
            return
        cfg = self._config(fmt)
        if self.opts.start_time is not None:
            cfg = dataclasses.replace(cfg, default_time=self.opts.start_time + index * self.opts.time_step)
        try:
            events = adapt(obj, cfg, fallback_id)
        except AdapterError as err:
            self.result.bad(source, where, str(err))
            return
        ahead = self._ahead(events)
        if ahead is not None:
            self.result.bad(source, where, ahead)
            return
        kept = [e for e in events if self._in_range(e.event_time)]
        source.events += len(kept)
        self.result.events.extend(kept)

    def _classified(self, source: SourceSummary, where: str, obj: Any) -> None:
        if not isinstance(obj, dict):
            self.result.bad(source, where, "record: expected a JSON object")
            return
        try:
            rec = ClassifiedResponse.model_validate(obj)
        except (ValidationError, ValueError) as err:
            msg = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in err.errors()[:3]) \
                if isinstance(err, ValidationError) else str(err)
            self.result.bad(source, where, f"invalid classified record: {msg}")
            return
        ahead = self._ahead([rec])
        if ahead is not None:
            self.result.bad(source, where, ahead)
            return
        if self._in_range(rec.event_time):
            source.events += 1
            self.result.classified.append(rec)

    def _ahead(self, events: Sequence[ResponseEvent | ClassifiedResponse]) -> str | None:
        """Why a record's events are too far ahead of the time they are read, as the worker checks them."""
        for ev in events:
            reason = ahead_reason(ev.event_time, self.read_at, self.opts.max_clock_skew)
            if reason is not None:
                return f"{ev.id}: {reason}"
        return None

    def _in_range(self, t: float) -> bool:
        o = self.opts
        if (o.time_from is not None and t < o.time_from) or (o.time_to is not None and t >= o.time_to):
            self.result.outside_range += 1
            return False
        return True


def read_files(paths: Iterable[Path], opts: ReplayOptions) -> ReplayInput:
    """Read every file in order; a bad record is counted (with the first reasons kept), never fatal."""
    reader = _Reader(opts)
    for path in paths:
        if path.is_dir():
            raise ReplayError(f"input {path}: is a folder; give the files in it (e.g. -i {path}/*.jsonl)")
        if not path.is_file():
            raise ReplayError(f"input {path}: no such file")
        with path.open("rb") as fh:
            source = SourceSummary(name=str(path), sha256=hashlib.file_digest(fh, "sha256").hexdigest())
        reader.result.sources.append(source)
        for n, obj, err in read_records(path):
            reader.feed(source, f"{path.name}:{n}", obj, err, f"{path.name}:{n}")
    return reader.result


def _decode_json(text: str | bytes) -> tuple[Any, str | None]:
    """(the decoded JSON, None), or (None, the reason it is not JSON)."""
    try:
        return json.loads(text), None
    except (ValueError, RecursionError) as err:
        return None, f"invalid JSON: {err}"


def _message_objects(value: bytes) -> list[tuple[Any, str | None]]:
    """The JSON objects of one message: the message itself, or, for JSON Lines (the ``classified`` topic
    packs several records per message), each line; (None, reason) where one is not JSON."""
    whole = _decode_json(value)
    lines = split_lines(value)
    if whole[1] is None or len(lines) < 2:
        return [whole]
    decoded = (_decode_json(line) for line in lines)
    return [(obj, None if err is None else f"line {n}: {err}") for n, (obj, err) in enumerate(decoded, 1)]


def read_kafka(broker: str, topic: str, opts: ReplayOptions, idle: float = 3.0, timeout: float = 3600.0) -> ReplayInput:
    """Read a whole topic from the beginning and keep the events in [from, to) of event time."""
    from valuedrift.ops.kafka import TopicMissingError, read_records
    from valuedrift.streams.settings import BrokerURL

    url = BrokerURL.parse(broker)
    try:
        # the worker's idle-close ticks on its classified topic are not records: not read, not hashed, not waited on
        msgs = sorted(asyncio.run(read_records(url, topic, idle=idle, timeout=timeout,
                                               keep=lambda value: not is_tick(value))))
    except TopicMissingError as err:
        raise ReplayError(str(err)) from None
    reader = _Reader(opts)
    source = SourceSummary(name=f"kafka:{topic}")
    reader.result.sources.append(source)
    h = hashlib.sha256()
    for partition, offset, value in msgs:
        h.update(len(value).to_bytes(8, "big"))
        h.update(value)
        where = f"{topic}[{partition}]@{offset}"
        problem = message_problem(value, opts.max_message_bytes)  # what the worker dead-letters, refused alike
        if problem is not None:
            reader.feed(source, where, None, problem, "")
            continue
        for i, (obj, err) in enumerate(_message_objects(value)):
            suffix = f"#{i}" if i else ""
            reader.feed(source, where + suffix, obj, err, f"{topic}:{partition}:{offset}{suffix}")
    source.sha256 = h.hexdigest()
    per_part = Counter(p for p, _, _ in msgs)
    reader.result.kafka = {"broker": str(url), "topic": topic, "messages": len(msgs),
                           "partitions": {str(p): n for p, n in sorted(per_part.items())},
                           "read": "from the beginning of every partition, filtered by event time"}
    return reader.result


# ---------------------------------------------------------------- running


def codes_for(records: list[ClassifiedResponse]) -> tuple[str, ...]:
    """The category codes of already-classified records: a known taxonomy whose codes match, else the first record's."""
    if not records:
        return TAXONOMIES["five-class"].codes
    first = tuple(records[0].probs)
    for tax in TAXONOMIES.values():
        if set(first) == set(tax.codes):
            return tax.codes
    return first


def labelling_card(versions: Sequence[str], spec: str | None) -> tuple[dict[str, Any], list[list[float]]] | None:
    """The model card (``evaluation``) and held-out confusion matrix of the classifier that labelled
    already-classified records, so their windows get ``entropy_corrected`` as the worker's did: found when the
    records name one model version and it is a shipped model's (its committed card) or that of the exported
    model folder given as ``--classifier``. None otherwise (other versions, or several).

    >>> labelling_card(["rules-1"], "rules") is None
    True
    """
    if len(versions) != 1:
        return None
    from valuedrift.classifier.default_model import SHIPPED, weights_dir

    cards = [weights_dir(name) / "evaluation.json" for name in SHIPPED]
    if spec and (Path(spec) / "model.json").is_file():
        cards.insert(0, Path(spec) / "model.json")
    for path in cards:
        try:
            card = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        evaluation = (card.get("evaluation") or {}) if path.name == "model.json" else card
        for entry in evaluation.values():
            if isinstance(entry, dict) and entry.get("model_version") == versions[0] and entry.get("confusion"):
                return evaluation, entry["confusion"]
    return None


def _check_page_on(settings: Settings, codes: tuple[str, ...]) -> None:
    from valuedrift.streams.core.alerting import check_page_on

    try:
        check_page_on(settings.alert_policy(), codes)
    except ValueError as err:
        raise ReplayError(str(err)) from None


def replay(inp: ReplayInput, settings: Settings, opts: ReplayOptions,
           progress: Callable[[int], None] | None = None,
           emit: Callable[[ClassifiedResponse], None] | None = None) -> dict[str, Any]:
    """Run the offline pipeline over the input and return the result as a JSON-ready dict.

    ``emit`` receives every replayed event as a ``ClassifiedResponse``, in replay order (``--classified``)."""
    tick = progress or (lambda n: None)
    classifier_info: dict[str, Any]
    if inp.format == "classified":
        recs = inp.classified
        codes = codes_for(recs)
        good = []
        for r in recs:
            if r.category in codes:
                good.append(r)
            elif len(inp.bad_examples) < MAX_BAD_EXAMPLES:  # the live window agent dead-letters these
                inp.bad_examples.append(f"{r.id}: {RecordRefused(r.category, codes)}")
        unknown = len(recs) - len(good)
        if opts.order == "time":
            good.sort(key=lambda r: r.event_time)
        versions = sorted({r.model_version for r in good})
        _check_page_on(settings, codes)
        card = labelling_card(versions, opts.classifier)  # the labelling model's confusion, when it is known here
        result = run_classified(_counting(good, tick), settings, codes, card[1] if card else None, emit=emit)
        classifier_info = {"spec": "none (already classified input)", "model_version": ",".join(versions) or None,
                           "taxonomy": list(codes), "evaluation": card[0] if card else None}
        n_events = len(good)
        ids = Counter(r.id for r in good)
    else:
        from valuedrift.classifier.loading import load_classifier

        try:
            # int8, one pair per call unless --inference-batch-size says otherwise (then it is in the config hash),
            # whatever the hardware: an audit's labels must not depend on batching
            clf = load_classifier(opts.classifier, precision="int8", batch_size=settings.inference_batch_size)
        except (ValueError, FileNotFoundError, RuntimeError) as err:
            raise ReplayError(str(err)) from None
        _check_page_on(settings, clf.taxonomy.codes)
        events = list(inp.events)
        if opts.order == "time":
            events.sort(key=lambda e: e.event_time)
        result = run_offline(_counting(events, tick), clf, settings, chunk_size=64, emit=emit)
        meta = getattr(clf, "meta", None) or {}
        classifier_info = {"spec": opts.classifier, "model_version": clf.version,
                           "taxonomy": list(clf.taxonomy.codes), "name": meta.get("name"),
                           "backbone": meta.get("backbone"), "evaluation": meta.get("evaluation")}
        unknown = 0
        n_events = len(events)
        ids = Counter(e.id for e in events)
    return build_result(inp, settings, opts, result, classifier_info, n_events, unknown,
                        sum(n - 1 for n in ids.values() if n > 1))


class ClassifiedWriter:
    """``--classified PATH``: every replayed event as one ``ClassifiedResponse`` JSON line (the classified
    topic's schema), byte-identical for the same input and settings; ``.gz`` is gzip with no time stamp.
    Replaying the file (``-i PATH``) windows it again without inference, with the same windows and alerts.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "c.jsonl.gz"
    >>> with ClassifiedWriter(path) as out:
    ...     out(ClassifiedResponse(id="r1", monitor_key="k", event_time=1767225600.0, category="g1",
    ...                            probs={"g1": 0.9, "g2": 0.1}, model_version="m"))
    >>> out.n, gzip.decompress(path.read_bytes()).decode().count("\\n")
    (1, 1)
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)  # OSError names the problem; the CLI makes it one line
        self._raw = path.open("wb")
        self._out: Any = (gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
                          if path.name.endswith(".gz") else self._raw)
        self.n = 0

    def __call__(self, rec: ClassifiedResponse) -> None:
        self._out.write(rec.model_dump_json().encode() + b"\n")
        self.n += 1

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()

    def __enter__(self) -> ClassifiedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _counting(items: list[Any], tick: Callable[[int], None], every: int = 256) -> Iterator[Any]:
    for i, item in enumerate(items, start=1):
        yield item
        if i % every == 0:
            tick(every)
    tick(len(items) % every)


def estimate_dict(e: Estimate) -> dict[str, float]:
    return {"value": e.value, "se": e.se, "ci_low": e.ci[0], "ci_high": e.ci[1], "p_value": e.p_value, "n": e.n}


def key_rates(result: OfflineResult, window_seconds: float, reference: str | None) -> dict[str, Any]:
    """dS/dt per key (OLS over its windows, by window position, so gaps count), with γ_eff and
    suppression against a reference key when one is given.

    A key whose classifier changed during the replay is measured on the windows since the last change
    only (S before it came from another classifier); ``classifier_change`` says so.
    """
    by_key: dict[str, list] = {}
    for w in result.windows:
        by_key.setdefault(w.monitor_key, []).append(w)
    slopes: dict[str, Estimate] = {}
    out: dict[str, Any] = {}
    for key, ws in sorted(by_key.items()):
        ws.sort(key=lambda w: w.window_start)
        before = max((i for i, w in enumerate(ws) if w.classifier_changed), default=0)  # windows left out
        ws = ws[before:]
        entry: dict[str, Any] = {"windows": len(ws), "events": sum(w.n for w in ws),
                                 "mean_entropy": sum(w.entropy for w in ws) / len(ws)}
        if before:
            entry["classifier_change"] = {
                "at": format_time(ws[0].window_start), "windows_before": before,
                "classifier_versions": ws[0].classifier_versions,
                "note": "rates use the windows since the last classifier change only"}
        steps = [round((w.window_start - ws[0].window_start) / window_seconds) for w in ws]
        if len(ws) >= 3:
            est = slope_estimate([w.entropy for w in ws], [w.entropy_se for w in ws], steps)
            slopes[key] = est
            per_hour = 3600.0 / window_seconds
            entry["ds_dt_per_window"] = estimate_dict(est)
            entry["ds_dt_per_hour"] = estimate_dict(Estimate(est.value * per_hour, est.se * per_hour, est.n))
            entry["variance"] = variance_shares([w.entropy for w in ws], [w.entropy_se for w in ws])
        else:
            entry["ds_dt_per_window"] = None
            entry["ds_dt_per_hour"] = None
            entry["variance"] = None
            entry["note"] = f"{len(ws)} window(s): a slope needs at least 3"
        out[key] = entry
    if reference is not None:
        ref = slopes.get(reference)
        for key, entry in out.items():
            if key == reference:
                entry["reference"] = True
                continue
            entry["gamma_eff_per_window"] = entry["suppression_percent"] = None
            if ref is None or key not in slopes:
                entry["reference_note"] = (f"reference key {reference!r} has fewer than 3 windows"
                                           if ref is None else "this key has fewer than 3 windows")
                continue
            entry["gamma_eff_per_window"] = estimate_dict(effective_alignment_work(ref, slopes[key]))
            try:
                entry["suppression_percent"] = estimate_dict(suppression(slopes[key], ref))
            except ValueError as err:
                entry["reference_note"] = str(err)
    return out


def settings_dict(settings: Settings) -> dict[str, Any]:
    """The settings that decide what a replay computes (not where a worker runs)."""
    out = {}
    for f in dataclasses.fields(settings):
        v = getattr(settings, f.name)
        if f.name in _INFRA or (f.name in _WHEN_SET and not v):
            continue
        out[f.name] = v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
    return out


def build_result(inp: ReplayInput, settings: Settings, opts: ReplayOptions, result: OfflineResult,
                 classifier_info: dict[str, Any], n_events: int, unknown_category: int,
                 duplicate_ids: int) -> dict[str, Any]:
    from importlib import metadata

    try:
        version = metadata.version("valuedrift")
    except metadata.PackageNotFoundError:
        version = "unknown"
    windows = sorted(result.windows, key=lambda w: (w.monitor_key, w.window_start))
    alerts = sorted(result.alerts, key=lambda a: (a.monitor_key, a.window_start))
    times = [e.event_time for e in inp.events] or [r.event_time for r in inp.classified]
    replay_opts = opts.as_dict()
    if inp.format == "classified":
        replay_opts["classifier"] = None  # no inference: the records carry their categories
    config = {"settings": settings_dict(settings), "replay": replay_opts, "taxonomy": classifier_info["taxonomy"]}
    if opts.reference is not None and opts.reference not in {w.monitor_key for w in windows}:
        raise ReplayError(f"--reference {opts.reference!r} is not a monitor key of the input")
    config["hash"] = hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]
    return {
        "schema": RESULT_SCHEMA,
        "input": {
            "sources": [s.as_dict() for s in inp.sources],
            "format": inp.format,
            "n_records": sum(s.records for s in inp.sources),
            "n_bad_lines": inp.n_bad,
            "bad_examples": inp.bad_examples,
            "n_events": n_events,
            "n_unknown_category": unknown_category,
            "n_outside_range": inp.outside_range,
            "n_late": result.late,
            "n_duplicate_ids": duplicate_ids,
            "first_event_time": format_time(min(times)) if times else None,
            "last_event_time": format_time(max(times)) if times else None,
            "kafka": inp.kafka,
        },
        "config": config,
        "versions": {"valuedrift": version, "classifier": classifier_info["model_version"]},
        "classifier": classifier_info,
        "windows": [w.model_dump(mode="json") for w in windows],
        "alerts": [a.model_dump(mode="json") for a in alerts],
        "rates": key_rates(result, settings.window_seconds, opts.reference),
    }


# ---------------------------------------------------------------- canonical JSON


def _canon(obj: Any) -> Any:
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        x = float(f"{obj:.12g}")
        return 0.0 if x == 0 else x
    if isinstance(obj, dict):
        return {str(k): _canon(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canon(v) for v in obj]
    return str(obj)


def canonical_json(obj: Any) -> str:
    """Sorted keys, floats to 12 significant digits, non-finite floats as null, one trailing newline.

    >>> canonical_json({"b": 0.1 + 0.2, "a": [float("nan"), -0.0, 2]})
    '{\\n "a": [\\n  null,\\n  0.0,\\n  2\\n ],\\n "b": 0.3\\n}\\n'
    """
    return json.dumps(_canon(obj), sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"

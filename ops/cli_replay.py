"""``valuedrift replay``: audit replay of logged events (files or a topic) → reproducible JSON + HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from valuedrift.ops.cli_common import quiet_kafka_logs
from valuedrift.ops.cli_errors import fail, printable
from valuedrift.ops.cli_settings import settings_options
from valuedrift.streams.settings import Settings


def _field_map(specs: list[str] | None):  # noqa: ANN202 - returns valuedrift.streams.adapters.FieldMap
    from valuedrift.streams.adapters import AdapterError, FieldMap, load_map, parse_map

    fields = FieldMap()
    try:
        for spec in specs or []:
            fields = fields.merged(parse_map(spec) if "=" in spec else load_map(spec))
    except AdapterError as err:
        fail(str(err))
    return fields


def _time(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    from valuedrift.streams.adapters import AdapterError, to_event_time

    try:
        return to_event_time(text)
    except AdapterError as err:
        fail(f"{option}: {str(err).removeprefix('event_time: ')}")


@settings_options("replay")
def replay(
    *,
    input: Annotated[list[Path] | None, typer.Option(
        "--input", "-i", help="JSONL, CSV or Parquet file (JSONL/CSV may be .gz); repeat for more")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="auto (own, or classified when records have category and probs) | own | openai | "
                         "transcript | mapped | classified")] = "auto",
    field_map: Annotated[list[str] | None, typer.Option(
        "--map", help="field paths: id=a.b,monitor_key=...,event_time=...,prompt=...,response=...,transcript=... "
                      "or a JSON/TOML file of them; repeatable")] = None,
    key: Annotated[str | None, typer.Option(help="monitor key for records that have none")] = None,
    context_turns: Annotated[int, typer.Option(
        help="transcript/openai input: earlier turns appended to the prompt, as the worker's --context-turns")] = 0,
    start_time: Annotated[str | None, typer.Option(
        help="give records without an event time START + record number × --time-step (ISO-8601 or epoch s)")] = None,
    time_step: Annotated[str, typer.Option(help="spacing of assigned event times, e.g. 1s")] = "1s",
    settings: Settings,  # the window, rule and classifier options (@settings_options)
    order: Annotated[str, typer.Option(
        help="time: replay in event-time order | input: in input order (reproduces a live run's late events)")]
        = "time",
    reference: Annotated[str | None, typer.Option(
        help="reference (base) key: γ_eff and drift suppression of every other key against its dS/dt")] = None,
    time_from: Annotated[str | None, typer.Option("--from", help="keep events at or after this event time")] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="keep events before this event time")] = None,
    topic: Annotated[str | None, typer.Option(help="read this Kafka topic (from the beginning) instead of files")]
        = None,
    broker: Annotated[str | None, typer.Option(help="kafka://host:port or tansu://host:port (with --topic)")] = None,
    idle: Annotated[str, typer.Option(help="with --topic: stop after this long without a new message")] = "3s",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the result JSON here")] = None,
    report: Annotated[Path | None, typer.Option(help="write the HTML report here")] = None,
    classified: Annotated[Path | None, typer.Option(
        "--classified", help="write every replayed event with its category and probabilities here (JSONL, the "
                             "classified topic's schema; .gz compresses): replay it with -i to re-window without "
                             "inference")] = None,
    png: Annotated[Path | None, typer.Option(help="also write PNG plots into this folder (needs matplotlib)")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar on stderr")] = True,
) -> None:
    """Replay logged events offline (same classifier, windows, estimators and rules as the worker) → JSON + report."""
    from valuedrift.ops.replay import (
        ClassifiedWriter,
        ReplayError,
        ReplayOptions,
        canonical_json,
        read_files,
        read_kafka,
    )
    from valuedrift.ops.replay import replay as run
    from valuedrift.streams.settings import parse_duration

    if bool(input) == bool(topic):
        fail("give --input FILE (repeatable) or --topic TOPIC with --broker, not both")
    if topic and not broker:
        fail("--topic needs --broker kafka://host:port (or tansu://host:port)")
    if broker:
        from valuedrift.streams.settings import BrokerURL

        try:
            BrokerURL.parse(broker)
        except ValueError as err:
            fail(str(err))
    try:
        step = parse_duration(time_step)
        idle_s = parse_duration(idle)
        opts = ReplayOptions(format=fmt, fields=_field_map(field_map), default_key=key, context_turns=context_turns,
                             start_time=_time(start_time, "--start-time"), time_step=step,
                             time_from=_time(time_from, "--from"), time_to=_time(time_to, "--to"), order=order,
                             reference=reference, classifier=settings.classifier,
                             max_clock_skew=settings.max_clock_skew_seconds,
                             max_message_bytes=settings.max_message_bytes)
    except ValueError as err:
        fail(str(err))
    try:
        if topic:
            quiet_kafka_logs()
            try:
                inp = read_kafka(broker or "", topic, opts, idle=idle_s)
            except ReplayError:
                raise
            except Exception as err:  # noqa: BLE001 - any connection failure is one line
                name = err.__class__.__name__
                text = str(err) if str(err).startswith(name) else f"{name}: {err}"
                fail(f"cannot read topic {topic!r} from {broker}: {text}", 1)
        else:
            inp = read_files(input or [], opts)
        if inp.n_events == 0:
            first = f"; first: {inp.bad_examples[0]}" if inp.bad_examples else ""
            fail(f"no usable events in the input ({inp.n_bad} bad record(s), {inp.outside_range} outside "
                 f"--from/--to){first}", 1)
        if inp.n_bad:
            typer.echo(f"warning: skipped {inp.n_bad} bad record(s); first: {printable(inp.bad_examples[0])}",
                       err=True)
        try:  # opened before the run, so a bad path fails before minutes of classification
            sink = ClassifiedWriter(classified) if classified is not None else None
        except OSError as err:
            why = ("part of its path is a file, not a folder" if isinstance(err, (FileExistsError, NotADirectoryError))
                   else err.strerror or err)
            fail(f"cannot write {classified}: {why}", 1)
        try:
            result = _run_with_progress(run, inp, settings, opts, progress, sink)
        finally:
            if sink is not None:
                sink.close()
    except ReplayError as err:
        fail(str(err))
    text = canonical_json(result)
    if json_out is not None:
        _write(json_out, text)
    if report is not None:
        from valuedrift.ops.report import render_report

        _write(report, render_report(result))
    if png is not None:
        _pngs(result, png)
    _summary(result, json_out, report)
    if sink is not None:
        typer.echo(f"classified: {classified} ({sink.n} record{'' if sink.n == 1 else 's'})")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {path}: {err.strerror or err}", 1)


def _run_with_progress(run, inp, settings, opts, show: bool, emit=None):  # noqa: ANN001, ANN202
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    what = "windowing" if inp.format == "classified" else "classifying + windowing"
    with Progress(TextColumn(f"[bold]replay[/] {what}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=not (show and console.is_terminal)) as bar:
        task = bar.add_task("events", total=inp.n_events)
        return run(inp, settings, opts, progress=lambda n: bar.advance(task, n), emit=emit)


def _summary(result: dict, json_out: Path | None, report: Path | None) -> None:
    inp = result["input"]
    typer.echo(f"replayed {inp['n_events']} events ({inp['format']}; {inp['n_bad_lines']} bad records, "
               f"{inp['n_late']} late) from {inp['first_event_time']} to {inp['last_event_time']}: "
               f"{len(result['windows'])} windows, "
               f"{len(result['alerts'])} alerts; config {result['config']['hash']}")
    for key, r in sorted(result["rates"].items()):
        e = r.get("ds_dt_per_window")
        slope = ("dS/dt n/a (" + r.get("note", "") + ")") if e is None else \
            f"dS/dt {e['value']:+.5f} nats/window [{e['ci_low']:+.5f}, {e['ci_high']:+.5f}] p={e['p_value']:.2g}"
        rules: dict[str, int] = {}
        for a in result["alerts"]:
            if a["monitor_key"] == key:
                rules[a["rule"]] = rules.get(a["rule"], 0) + 1
        extra = ""
        if r.get("suppression_percent"):
            s = r["suppression_percent"]
            extra = f"; suppression {s['value']:.1f}% [{s['ci_low']:.1f}, {s['ci_high']:.1f}]"
        since = f" since the classifier change at {r['classifier_change']['at']}" if r.get("classifier_change") else ""
        typer.echo(f"  {printable(key)}: {r['windows']} windows{since}, mean S {r['mean_entropy']:.3f}, {slope}"
                   f"{extra}; alerts " + (", ".join(f"{k}×{v}" for k, v in sorted(rules.items())) or "none"))
    for label, path in (("json", json_out), ("report", report)):
        if path is not None:
            typer.echo(f"{label}: {path}")


def _pngs(result: dict, folder: Path) -> None:
    """PNG plots per key with matplotlib when it is installed; otherwise say so and go on."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        typer.echo("note: --png skipped: no plotting library (matplotlib) is installed; the HTML report has the "
                   "same plots as inline SVG", err=True)
        return
    folder.mkdir(parents=True, exist_ok=True)
    by_key: dict[str, list[dict]] = {}
    for w in result["windows"]:
        by_key.setdefault(w["monitor_key"], []).append(w)
    for key, ws in sorted(by_key.items()):
        t = [(w["window_start"] + w["window_end"]) / 2 for w in ws]
        s = [w["entropy"] for w in ws]
        se = [1.959963984540054 * w["entropy_se"] for w in ws]
        fig, ax = plt.subplots(figsize=(9, 3))
        ax.fill_between(t, [a - b for a, b in zip(s, se, strict=True)], [a + b for a, b in zip(s, se, strict=True)],
                        alpha=0.25)
        ax.plot(t, s)
        for a in result["alerts"]:
            if a["monitor_key"] == key and a["severity"] != "info":
                ax.axvline(a["window_start"], color="red", linestyle="--", linewidth=0.8)
        ax.set_title(f"S(t) of {key} (95% CI)")
        ax.set_ylabel("nats")
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)[:100] or "key"
        fig.savefig(folder / f"{safe}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
    typer.echo(f"png: {folder}")

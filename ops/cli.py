"""The ``valuedrift`` command line."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from valuedrift.ops.cli_bench import app as bench_app
from valuedrift.ops.cli_classifier import app as classifier_app
from valuedrift.ops.cli_common import load_settings, quiet_kafka_logs, unreachable
from valuedrift.ops.cli_errors import fail
from valuedrift.ops.cli_replay import replay as replay_command
from valuedrift.ops.cli_sampler import app as sampler_app
from valuedrift.ops.cli_sampler import probe as probe_command
from valuedrift.ops.cli_settings import setting_option, settings_options
from valuedrift.ops.cli_webhook import app as webhook_app
from valuedrift.streams.settings import Settings

app = typer.Typer(
    name="valuedrift",
    help="Detect value drift in LLM chat logs: classify responses, track category entropy per window, alert.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


app.add_typer(classifier_app, name="classifier")
app.add_typer(bench_app, name="bench")
app.add_typer(sampler_app, name="sampler")
app.add_typer(webhook_app, name="webhook")
app.command(name="probe")(probe_command)
app.command(name="replay")(replay_command)

BrokerOpt = setting_option("broker")


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 picks a free one)")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) in the foreground."""
    import time

    from valuedrift.ops.broker import EmbeddedBroker, free_port

    try:
        b = EmbeddedBroker(port=port or free_port()).start()
    except RuntimeError as err:
        fail(str(err), 1)
    typer.echo(f"embedded broker listening; use --broker {b.url}  (in memory: data is lost on exit; Ctrl-C stops)")
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a service manager's stop must not leave the Tansu child running
    try:
        while b.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


@app.command()
@settings_options("worker")
def worker(*, settings: Settings) -> None:
    """Run a stream worker: classify → event-time windows → alerts."""
    from valuedrift.classifier.loading import load_classifier
    from valuedrift.ops.kafka import ensure_topics
    from valuedrift.streams.core.alerting import check_page_on
    from valuedrift.streams.worker.app import run_worker

    if settings.metrics_port:
        port_in_use(settings.metrics_host, settings.metrics_port)
    try:
        clf = load_classifier(settings.classifier, precision=settings.classifier_precision,
                              batch_size=settings.inference_batch_size)
        check_page_on(settings.alert_policy(), clf.taxonomy.codes)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        fail(str(err))
    quiet_kafka_logs()
    try:
        asyncio.run(ensure_topics(settings))
    except Exception as err:  # noqa: BLE001 - any connection failure is reported in one line
        unreachable(settings, err)
    import logging

    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    run_worker(settings, clf)


@app.command()
@settings_options("topics")
def topics(*, settings: Settings) -> None:
    """Create the pipeline's topics that are missing and list them."""
    from valuedrift.ops.kafka import ensure_topics

    quiet_kafka_logs()
    try:
        created = asyncio.run(ensure_topics(settings))
    except Exception as err:  # noqa: BLE001 - any connection failure is reported in one line
        unreachable(settings, err)
    for t in settings.topics.all():
        typer.echo(f"{t}{'  (created)' if t in created else ''}")


@app.command()
def schemas(
    out: Annotated[Path, typer.Option(help="folder to write the JSON Schema files into")] = Path("streams/schemas"),
    check: Annotated[bool, typer.Option(help="only check that the files there are up to date")] = False,
) -> None:
    """Write (or check) the JSON Schema of every record type."""
    from valuedrift.streams.core.records import dump_schema, json_schemas

    stale = []
    if not check:
        out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        path = out / name
        text = dump_schema(schema)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            typer.echo(str(path))
    if stale:
        fail(f"out of date: {', '.join(stale)}; run `valuedrift schemas --out {out}`", 1)


@app.command()
def simulate(
    scenario: Annotated[list[str] | None, typer.Option(
        help="stable | drift | jump | jailbreak; repeat for more keys [stable and drift]")] = None,
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="windows (steps) per key")] = 50,
    k: Annotated[int, typer.Option(min=1, max=100_000, help="responses per key per step")] = 100,
    sigma: Annotated[float, typer.Option(help="drift rate, nats/step")] = 0.0125,
    jump: Annotated[float, typer.Option(help="jump size, nats")] = 0.1,
    seed: Annotated[int, typer.Option()] = 0,
    window: Annotated[str, typer.Option(help="event time per step")] = "60s",
    corpus: Annotated[Path | None, typer.Option(help="labelled JSONL with texts per category [demo corpus]")] = None,
    classified: Annotated[bool, typer.Option(help="emit classified records (true category) instead")] = False,
    out: Annotated[Path | None, typer.Option(help="write JSONL here")] = None,
    broker: BrokerOpt = None,
    topic: Annotated[str | None, typer.Option(help="produce to this topic [the responses or classified topic]")] = None,
) -> None:
    """Emit seeded events with ground truth (set σ, jumps, jailbreak pressure) to a file or to Kafka."""
    from valuedrift.classifier.corpus import demo_corpus
    from valuedrift.classifier.datasets import DatasetError, load_jsonl
    from valuedrift.ops.simulate import simulated_events
    from valuedrift.streams.core.simulation import SCENARIOS
    from valuedrift.streams.core.windowing import MAX_WINDOW_SECONDS, MIN_WINDOW_SECONDS
    from valuedrift.streams.settings import parse_duration

    scenario = scenario or ["stable", "drift"]
    bad = [s for s in scenario if s not in SCENARIOS]
    if bad:
        fail(f"unknown scenario {bad[0]!r}; choose from {', '.join(SCENARIOS)}")
    if (out is None) == (broker is None and topic is None):
        fail("give either --out FILE or --broker (and optionally --topic)")
    if not (math.isfinite(sigma) and 0 <= sigma <= 1):
        fail(f"--sigma must be a drift rate from 0 to 1 nats/step, got {sigma!r}")
    if not (math.isfinite(jump) and abs(jump) <= math.log(1000)):
        fail(f"--jump must be a finite entropy step in nats, got {jump!r}")
    try:
        step_seconds = parse_duration(window)
        if not MIN_WINDOW_SECONDS <= step_seconds <= MAX_WINDOW_SECONDS:
            fail(f"--window must be from {MIN_WINDOW_SECONDS:g} s to a year, got {window!r}")
        texts = load_jsonl(corpus) if corpus else demo_corpus()
        events = simulated_events(scenario, steps, k, seed, texts, step_seconds, sigma, jump, classified)
        if out is not None:
            n = 0
            with out.open("w") as fh:
                for ev in events:
                    fh.write(ev.model_dump_json() + "\n")
                    n += 1
            typer.echo(f"wrote {n} events to {out}")
            return
        from valuedrift.ops.kafka import send_all

        settings = load_settings(broker=broker)
        name = topic or (settings.topics.classified if classified else settings.topics.responses)
        quiet_kafka_logs()
        try:
            n = asyncio.run(send_all(settings.broker, name, ((e.monitor_key.encode(), e.to_bytes()) for e in events)))
        except Exception as err:  # noqa: BLE001 - reported in one line
            unreachable(settings, err)
        typer.echo(f"produced {n} events to {name}")
    except (DatasetError, ValueError) as err:
        fail(str(err))


@app.command()
def demo(
    windows: Annotated[int, typer.Option(min=3, max=200, help="windows per model")] = 24,
    per_window: Annotated[int, typer.Option(min=10, max=2000, help="responses per model per window (k)")] = 100,
    seed: Annotated[int, typer.Option(help="random seed of the scenario")] = 7,
    classifier: Annotated[str, typer.Option(help="default | rules")] = "default",
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 170.0,
) -> None:
    """Run the whole pipeline on an embedded broker with a stable and a drifting model; show a live table."""
    from valuedrift.ops.demo import run_demo

    code = run_demo(windows=windows, per_window=per_window, seed=seed, classifier=classifier, timeout=timeout)
    raise typer.Exit(code)


@app.command()
def soak(
    minutes: Annotated[float, typer.Option(min=0.5, max=240, help="how long to sustain the input")] = 10.0,
    load: Annotated[float, typer.Option(min=0.05, max=1.5, help="input rate as a fraction of the classifier's "
                                                                 "measured capacity")] = 0.8,
    classifier: Annotated[str, typer.Option(help="default | rules | null")] = "default",
    every: Annotated[float, typer.Option(min=1, max=600, help="seconds between samples")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as one JSON object")] = False,
) -> None:
    """Sustained input through a real worker on an embedded broker: RSS, lag and windows over time."""
    import json

    from valuedrift.ops.soak import run_soak

    def show(s: object) -> None:
        if not as_json:
            typer.echo(f"t={s.t:7.1f}s rss={s.rss_mib:7.1f} MiB produced={s.produced:7d} "  # type: ignore[attr-defined]
                       f"classified={s.classified:7d} lag={s.lag:6d} windows={s.windows:6d}")  # type: ignore[attr-defined]

    try:
        verdict = run_soak(minutes=minutes, load=load, classifier=classifier, every=every, report=show)
    except (RuntimeError, OSError, ValueError) as err:
        fail(str(err))
    typer.echo(json.dumps(verdict) if as_json else "\n".join(f"{k}: {v}" for k, v in verdict.items()))
    raise typer.Exit(0 if verdict["rss_ok"] and verdict["lag_ok"] else 1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as err:  # a file or folder a command was given that cannot be used: one line, never a traceback
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        sys.exit(1)


def port_in_use(host: str, port: int) -> None:
    """Fail in one line, before minutes of start-up, when the metrics port cannot be bound."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            fail(f"--metrics-port {port}: cannot listen on {host}:{port} ({err.strerror}); pick a free port or 0 "
                 f"(off)")


def os_error_line(err: OSError) -> str:
    """One line for a failed file operation: which path, what went wrong, what to do.

    >>> os_error_line(IsADirectoryError(21, "Is a directory", "/tmp"))
    '/tmp is a folder: give a file path'
    >>> os_error_line(OSError(28, "No space left on device", "/dev/full"))
    '/dev/full: No space left on device'
    >>> os_error_line(OSError(28, "No space left on device"))
    'OSError: No space left on device'
    """
    path = err.filename
    if isinstance(err, IsADirectoryError):
        return f"{path} is a folder: give a file path"
    if isinstance(err, FileNotFoundError):
        return f"{path}: no such file or folder (check the path; a missing parent folder is not created)"
    if isinstance(err, FileExistsError | NotADirectoryError):
        return f"{path}: part of the path is a file where a folder is needed"
    if isinstance(err, PermissionError):
        return f"{path}: permission denied"
    return f"{path if path else type(err).__name__}: {err.strerror or err}"


if __name__ == "__main__":
    main()

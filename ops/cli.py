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
from valuedrift.ops.cli_common import (
    BrokerOpt,
    LatenessOpt,
    MinNOpt,
    PageOnOpt,
    TrendWindowsOpt,
    WindowOpt,
    load_settings,
    quiet_kafka_logs,
    unreachable,
)
from valuedrift.ops.cli_errors import fail
from valuedrift.ops.cli_replay import replay as replay_command
from valuedrift.ops.cli_sampler import app as sampler_app
from valuedrift.ops.cli_sampler import probe as probe_command
from valuedrift.ops.cli_webhook import app as webhook_app

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
def worker(
    broker: BrokerOpt = None,
    window: WindowOpt = None,
    lateness: LatenessOpt = None,
    idle_close: Annotated[str | None, typer.Option(
        help="close a key's open windows after this much wall-clock silence (0 = never)")] = None,
    max_clock_skew: Annotated[str | None, typer.Option(
        help="dead-letter events whose time is further ahead of their Kafka timestamp, e.g. 5m [300s]")] = None,
    epsilon: Annotated[float | None, typer.Option(help="the method's |ΔS| threshold in nats [0.001]")] = None,
    z: Annotated[float | None, typer.Option(help="ΔS significance threshold in standard errors [4.42]")] = None,
    trend_z: Annotated[float | None, typer.Option(help="trend-test threshold in standard errors [3.89]")] = None,
    trend_windows: TrendWindowsOpt = None,
    min_n: MinNOpt = None,
    page_on: PageOnOpt = None,
    rules: Annotated[str | None, typer.Option(
        help="alert rules, comma-separated, from epsilon, delta_z, trend, page_hinkley, adwin, kswin, ddm_g2, "
             "ddm_g4 [epsilon,delta_z,trend,page_hinkley]")] = None,
    signals: Annotated[str | None, typer.Option(
        help="rules whose firing opens a drift episode [delta_z,trend,page_hinkley]")] = None,
    combine: Annotated[str | None, typer.Option(
        help="'any' signal, or 'K-of-N': K distinct rules within N windows [any]")] = None,
    clear_windows: Annotated[int | None, typer.Option(
        help="quiet windows that close a drift episode (hysteresis) [10]")] = None,
    cooldown_windows: Annotated[int | None, typer.Option(
        help="windows after an episode opens before another may open [0]")] = None,
    keys: Annotated[int | None, typer.Option(
        help="number of monitored keys: z thresholds are Bonferroni-adjusted for them [1]")] = None,
    classifier: Annotated[str | None, typer.Option(help="default | rules | exported model folder")] = None,
    precision: Annotated[str | None, typer.Option(
        help="ONNX precision: auto (fp16 on CUDA, int8 on CPU) | int8 | fp16 | fp32 [auto]")] = None,
    alert_sink: Annotated[list[str] | None, typer.Option(
        help="also deliver alerts to: stdout | jsonl:PATH | webhook:URL (repeatable; webhook bodies are signed "
             "with VALUEDRIFT_WEBHOOK_SECRET)")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="serve Prometheus metrics on 127.0.0.1:PORT (0 = off) [0]")] = None,
    partitions: Annotated[int | None, typer.Option(help="partitions of the pipeline's topics [4]")] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="prefix of every topic name [valuedrift.]")] = None,
    input_topic: Annotated[str | None, typer.Option(help="read responses from this existing topic")] = None,
    input_format: Annotated[str | None, typer.Option(
        help="format of the input messages: own | openai | transcript | mapped [own]")] = None,
    input_map: Annotated[str | None, typer.Option(
        help="field paths, FIELD=PATH,... or a .json/.toml file (id, monitor_key, event_time, prompt, "
             "response, transcript)")] = None,
    input_key: Annotated[str | None, typer.Option(help="monitor key for input records that carry none")] = None,
    context_turns: Annotated[int | None, typer.Option(
        help="transcript/openai input: earlier turns appended to the prompt, for a classifier trained with them "
             "(classifier prepare --context-turns) [0]")] = None,
    batch_size: Annotated[int | None, typer.Option(help="most messages taken and classified at once [1000]")] = None,
    app_id: Annotated[str | None, typer.Option(help="Faust app id (consumer group) [valuedrift]")] = None,
    datadir: Annotated[Path | None, typer.Option(help="worker data directory")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING...")] = None,
) -> None:
    """Run a stream worker: classify → event-time windows → alerts."""
    from valuedrift.classifier.loading import load_classifier
    from valuedrift.ops.kafka import ensure_topics
    from valuedrift.streams.core.alerting import check_page_on
    from valuedrift.streams.worker.app import run_worker

    settings = load_settings(
        broker=broker, window_seconds=window, lateness_seconds=lateness, idle_close_seconds=idle_close,
        max_clock_skew_seconds=max_clock_skew, epsilon=epsilon, z_threshold=z, trend_z=trend_z,
        trend_windows=trend_windows, alert_min_n=min_n, alert_page_on=page_on, alert_rules=rules,
        alert_signals=signals, alert_combine=combine, alert_clear_windows=clear_windows,
        alert_cooldown_windows=cooldown_windows, alert_keys=keys,
        alert_sinks=",".join(alert_sink) if alert_sink else None, metrics_port=metrics_port,
        classifier=classifier, classifier_precision=precision, partitions=partitions,
        topic_prefix=topic_prefix,
        input_topic=input_topic, input_format=input_format, input_map=input_map, input_key=input_key,
        input_context_turns=context_turns,
        batch_size=batch_size, app_id=app_id, datadir=datadir, log_level=log_level,
    )
    if settings.metrics_port:
        port_in_use(settings.metrics_host, settings.metrics_port)
    try:
        clf = load_classifier(settings.classifier, precision=settings.classifier_precision)
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
def topics(broker: BrokerOpt = None, partitions: Annotated[int | None, typer.Option()] = None,
           topic_prefix: Annotated[str | None, typer.Option()] = None) -> None:
    """Create the pipeline's topics that are missing and list them."""
    from valuedrift.ops.kafka import ensure_topics

    settings = load_settings(broker=broker, partitions=partitions, topic_prefix=topic_prefix)
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

"""``valuedrift bench ...``: benchmarks that print numbers (never timed assertions in tests)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from valuedrift.ops.cli_errors import fail

app = typer.Typer(help="Benchmarks: detectors (false alarms, delays, σ recovery); replay core throughput.",
                  no_args_is_help=True)


@app.command()
def detectors(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    runs: Annotated[int, typer.Option(min=10, max=100_000, help="seeded runs per case")] = 200,
    k: Annotated[int, typer.Option(min=10, max=100_000, help="responses per window")] = 100,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """False alarms per 1,000 no-drift windows, detection delays (σ = 0.0125 drift, +0.1-nat jump), σ recovery;
    then the same for every window size (k = 5 … 500 and traffic that ebbs and flows)."""
    from valuedrift.ops.bench_detectors import DEFAULT_NAME, run_bench, run_by_k

    result = run_bench(runs=runs, k=k, seed=seed)
    result["by_k"] = run_by_k(runs=runs, seed=seed)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{'rule':<10} {'FA/1000':>8} {'drift med':>9} {'drift p90':>9} {'jump med':>8}  missed drift/jump")
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:g}"

    for name, d in result["detectors"].items():
        typer.echo(f"{name:<10} {d['false_alarms_per_1000']:>8g} {f(d['median_delay_drift']):>9} "
                   f"{f(d['p90_delay_drift']):>9} {f(d['median_delay_jump']):>8}  "
                   f"{d['missed_drift']:.3f}/{d['missed_jump']:.3f}")
    s = result["sigma"]
    typer.echo(f"σ injected {s['injected']} estimated {s['mean_estimate']} (95% CI coverage {s['ci_coverage']})")
    typer.echo(f"\nthe {DEFAULT_NAME} policy by responses per window (delays in windows):")
    typer.echo(f"{'k':<10} {'FA/1000':>8} {'drift med':>9} {'jump med':>8}  missed drift/jump")
    for size, rules in result["by_k"].items():
        d = rules[DEFAULT_NAME]
        typer.echo(f"{size:<10} {d['false_alarms_per_1000']:>8g} {f(d['median_delay_drift']):>9} "
                   f"{f(d['median_delay_jump']):>8}  {d['missed_drift']:.3f}/{d['missed_jump']:.3f}")


@app.command()
def replay(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    events: Annotated[int, typer.Option(min=1000, max=10_000_000, help="classified records generated in memory")]
        = 200_000,
    keys: Annotated[int, typer.Option(min=1, max=10_000, help="monitored keys")] = 8,
    per_window: Annotated[int, typer.Option(min=1, max=100_000, help="records per key per window")] = 100,
    repeat: Annotated[int, typer.Option(min=1, max=20, help="runs per measurement (best is kept)")] = 3,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Events/s through the replay core (windows + estimators + detectors) vs parsing the same records."""
    from valuedrift.ops.bench_replay import run_bench

    result = run_bench(n=events, keys=keys, seed=seed, repeat=repeat, per_window=per_window)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{result['events']} classified events, {result['keys']} keys, {result['windows']} windows, "
               f"{result['alerts']} alerts (best of {result['repeat']})")
    for name in ("json_loads_eps", "parse_only_eps", "core_eps", "end_to_end_eps"):
        typer.echo(f"{name:<16} {result[name]:>10,} events/s")
    typer.echo(f"{'ratio':<16} {result['ratio']:>10} (core / parse-only)")


@app.command()
def stream(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    events: Annotated[int, typer.Option(min=500, max=1_000_000, help="events for the Kafka and null runs")] = 20000,
    real_events: Annotated[int, typer.Option(min=100, max=100_000, help="events for the default classifier")]
        = 2400,
    seed: Annotated[int, typer.Option()] = 0,
    rounds: Annotated[int, typer.Option(min=1, max=10, help="pipeline runs with the classifier, each between "
                                        "two runs of the classifier alone")] = 2,
) -> None:
    """Events/s on an embedded broker: raw Kafka copy, the null pipeline, the classifier alone, the pipeline."""
    from valuedrift.ops.bench_stream import run_bench

    try:
        result = run_bench(n_null=events, n_real=real_events, seed=seed, rounds=rounds)
    except (RuntimeError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    for name in ("raw_kafka_eps", "null_pipeline_eps", "classifier_alone_eps", "pipeline_eps"):
        typer.echo(f"{name:<22} {result[name]:>10,.1f} events/s")
    typer.echo(f"{'efficiency':<22} {result['efficiency']:>10} (pipeline / classifier alone)")


@app.command()
def memory(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    pairs: Annotated[int, typer.Option(min=10, max=100_000, help="labelled pairs per run")] = 1000,
    long_kb: Annotated[int, typer.Option(min=1, max=100_000, help="size of the one long prompt, KB")] = 200,
    model: Annotated[str, typer.Option(help="default | accurate | rules | exported model folder")] = "default",
) -> None:
    """Max RSS of `classifier evaluate` with one long prompt among the pairs, against the same pairs all short."""
    from valuedrift.ops.bench_memory import run_bench

    try:
        result = run_bench(pairs=pairs, long_kb=long_kb, model=model)
    except RuntimeError as err:
        fail(str(err), 1)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"classifier evaluate, {pairs} pairs ({model}): {result['baseline_max_rss_mb']:.0f} MB max RSS all "
               f"short, {result['long_max_rss_mb']:.0f} MB with one {long_kb} KB prompt: ratio {result['ratio']}")

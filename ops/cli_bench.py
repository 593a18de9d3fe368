"""``valuedrift bench ...``: benchmarks that print numbers (never timed assertions in tests)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Benchmarks: detectors (false alarms, delays, σ recovery).", no_args_is_help=True)


@app.command()
def detectors(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    runs: Annotated[int, typer.Option(min=10, max=100_000, help="seeded runs per case")] = 200,
    k: Annotated[int, typer.Option(min=10, max=100_000, help="responses per window")] = 100,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """False alarms per 1,000 no-drift windows, detection delays (σ = 0.0125 drift, +0.1-nat jump), σ recovery."""
    from ops.bench_detectors import run_bench

    result = run_bench(runs=runs, k=k, seed=seed)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{'rule':<10} {'FA/1000':>8} {'drift med':>9} {'drift p90':>9} {'jump med':>8}  missed drift/jump")
    for name, d in result["detectors"].items():
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:g}"

        typer.echo(f"{name:<10} {d['false_alarms_per_1000']:>8g} {f(d['median_delay_drift']):>9} "
                   f"{f(d['p90_delay_drift']):>9} {f(d['median_delay_jump']):>8}  "
                   f"{d['missed_drift']:.3f}/{d['missed_jump']:.3f}")
    s = result["sigma"]
    typer.echo(f"σ injected {s['injected']} estimated {s['mean_estimate']} (95% CI coverage {s['ci_coverage']})")

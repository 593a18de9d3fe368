"""What the commands share: settings from options and the environment, Kafka log quieting, the --broker option,
and the one-line error for an unreachable broker. Command modules import it; it imports none of them."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from valuedrift.ops.cli_errors import fail


def unreachable(settings: object, err: Exception) -> NoReturn:
    name = err.__class__.__name__
    text = str(err) if str(err).startswith(name) else f"{name}: {err}"
    fail(f"cannot reach the broker at {settings.broker}: {text}; start one with `valuedrift broker` or pass "  # type: ignore[attr-defined]
         f"--broker", 1)


def quiet_kafka_logs() -> None:
    """aiokafka logs connection failures itself; the CLI reports them once, in one line."""
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


BrokerOpt = Annotated[str | None, typer.Option(
    "--broker", help="kafka://host:port[,host:port] for a Kafka cluster, tansu://host:port for the embedded "
                     "broker [env VALUEDRIFT_BROKER; default kafka://127.0.0.1:9092]")]


def load_settings(**overrides: object):  # noqa: ANN201 - returns Settings; imported lazily
    from valuedrift.streams.settings import Settings, parse_duration

    try:
        for name in ("window_seconds", "lateness_seconds", "idle_close_seconds", "batch_within_seconds",
                     "max_clock_skew_seconds"):
            if isinstance(overrides.get(name), str):
                overrides[name] = parse_duration(overrides[name])  # type: ignore[arg-type]
        settings = Settings.from_env(**overrides)
        for warning in settings.broker.security.warnings():
            typer.echo(f"warning: {warning}", err=True)
        settings.alert_policy()  # validates the rule names and thresholds
        settings.sink_specs  # noqa: B018 - validates the alert sinks
        settings.adapter_config()  # validates the input format and field map
        return settings
    except ValueError as err:
        fail(str(err))


# Options that the worker and replay share, declared once.
WindowOpt = Annotated[str | None, typer.Option(help="event-time window size, e.g. 5m [default 300s]")]
LatenessOpt = Annotated[str | None, typer.Option(help="allowed lateness, e.g. 30s")]
MinNOpt = Annotated[int | None, typer.Option(
    help="responses the rules need to judge: smaller windows are merged with the next ones [100]")]
PageOnOpt = Annotated[str | None, typer.Option(
    help="category codes, comma-separated (e.g. g2): a significant rise in one's share opens a critical drift "
         "episode even when S barely moves")]
TrendWindowsOpt = Annotated[int | None, typer.Option(help="blocks in the trend test [20]")]

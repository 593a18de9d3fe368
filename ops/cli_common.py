"""What the commands share: settings from options and the environment, Kafka log quieting, and the one-line error
for an unreachable broker. Command modules import it; it imports none of them."""

from __future__ import annotations

from typing import NoReturn

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


def load_settings(**overrides: object):  # noqa: ANN201 - returns Settings; imported lazily
    """Settings from ``overrides`` (option values by field name; None: not given) over the ``VALUEDRIFT_*``
    variables and the defaults, validated; a bad value is a one-line error."""
    import dataclasses

    from valuedrift.streams.settings import Settings, declared, env_name, option_flag, parse_duration

    try:
        for f in dataclasses.fields(Settings):
            if declared(f).kind == "duration" and isinstance(overrides.get(f.name), str):
                try:
                    overrides[f.name] = parse_duration(overrides[f.name])  # type: ignore[arg-type]
                except ValueError as err:
                    raise ValueError(f"{option_flag(f) or env_name(f)}: {err}") from None
        settings = Settings.from_env(**overrides)
        for warning in settings.broker.security.warnings():
            typer.echo(f"warning: {warning}", err=True)
        settings.alert_policy()  # validates the rule names and thresholds
        settings.sink_specs  # noqa: B018 - validates the alert sinks
        settings.adapter_config()  # validates the input format and field map
        return settings
    except ValueError as err:
        fail(str(err))


"""Command-line options made from the Settings declaration (``valuedrift.streams.settings``).

``@settings_options("worker")`` gives a command one option for every setting declared for it, with the
setting's help, its default and its environment variable, and calls the command with one validated
``settings`` built from them over the ``VALUEDRIFT_*`` variables and the defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from valuedrift.ops.cli_common import load_settings
from valuedrift.streams.settings import Settings, declared, default_text, env_name, option_flag

R = TypeVar("R")
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_TYPES = typing.get_type_hints(Settings)


def option_help(f: dataclasses.Field) -> str:
    """The setting's help with its default and environment variable, e.g. ``... [default: 300s; env ...]``."""
    default = default_text(f)
    where = f"default: {default}; env {env_name(f)}" if default else f"env {env_name(f)}"
    return f"{declared(f).help} [{where}]"


def _as_written(text: str) -> str:
    """Help text that shows as written: with Rich on, Typer reads help as markup, where ``[default: …]`` is a tag."""
    if typer.core.DEFAULT_MARKUP_MODE != "rich":
        return text
    from rich.markup import escape

    return escape(text)


def _value_type(f: dataclasses.Field) -> Any:
    """What the option takes: a duration as written (90s, 5m), a list of repeated values, or the field's type."""
    kind = declared(f).kind
    if kind == "duration":
        return str
    if kind == "list":
        return list[str]
    hint = _TYPES[f.name]
    return hint if hint in (int, float, bool, Path) else str  # str, str | None, BrokerURL: the text given


def setting_option(name: str) -> Any:
    """The option of the setting ``name`` as a parameter type, for a command that passes it on itself."""
    f = _FIELDS[name]
    flag = option_flag(f) or "--" + name.replace("_", "-")
    return Annotated[_value_type(f) | None, typer.Option(flag, help=_as_written(option_help(f)))]


def _old_name(f: dataclasses.Field) -> str:
    return (declared(f).old_flag or "").lstrip("-").replace("-", "_")


def _parameters(f: dataclasses.Field) -> list[inspect.Parameter]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    out = [inspect.Parameter(f.name, keyword, default=None, annotation=setting_option(f.name))]
    if declared(f).old_flag:
        hidden = Annotated[_value_type(f) | None, typer.Option(declared(f).old_flag, hidden=True)]
        out.append(inspect.Parameter(_old_name(f), keyword, default=None, annotation=hidden))
    return out


def _given(f: dataclasses.Field, values: dict[str, Any]) -> Any:
    """The option's value (None: not given), taken out of ``values``; a list joined with commas."""
    value = values.pop(f.name)
    old_flag = declared(f).old_flag
    if old_flag:
        old = values.pop(_old_name(f))
        if old is not None:
            typer.echo(f"warning: {old_flag} is now {option_flag(f)}", err=True)
            value = old if value is None else value
    if declared(f).kind == "list":
        return ",".join(value) if value else None
    return value


def settings_options(command: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate a command that takes ``settings: Settings``: in its place it gets one option per setting declared
    for ``command`` (listed where ``settings`` is), and is called with the settings they give (a bad value: a
    one-line error)."""
    fields = [f for f in dataclasses.fields(Settings) if command in declared(f).commands]
    if not fields:
        raise ValueError(f"no setting is declared for the command {command!r}")

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        own = inspect.signature(func, eval_str=True)
        if "settings" not in own.parameters:
            raise TypeError(f"{func.__name__} needs a settings parameter for @settings_options")
        made = [p for f in fields for p in _parameters(f)]
        clash = sorted(set(own.parameters) & {p.name for p in made})
        if clash:
            raise TypeError(f"{func.__name__}: parameters {clash} are also settings of {command!r}; rename them")
        params: list[inspect.Parameter] = []
        for p in own.parameters.values():  # Typer passes every option by name
            params.extend(made if p.name == "settings" else [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)])

        @functools.wraps(func)
        def with_settings(**values: Any) -> R:
            overrides = {f.name: _given(f, values) for f in fields}
            return func(**values, settings=load_settings(**overrides))

        with_settings.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        with_settings.__annotations__ = {p.name: p.annotation for p in params}
        if own.return_annotation is not own.empty:
            with_settings.__annotations__["return"] = own.return_annotation
        return with_settings

    return decorate

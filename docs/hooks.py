"""MkDocs hooks (docs/mkdocs.yml, ``hooks:``): the reference pages are written from the code at build time.

A page holding one of these markers gets it replaced by Markdown generated from the installed package:

- ``<!-- cli-reference -->``: every command and subcommand of the ``valuedrift`` Typer app, its options and help;
- ``<!-- settings-reference -->``: every field of ``valuedrift.streams.settings.Settings`` with its environment
  variable, type, default and help (the field's ``metadata["help"]`` where it has one);
- ``<!-- schemas-reference -->``: the JSON Schema of every record type (``records.json_schemas()``), as a table of
  fields and the raw JSON;
- ``<!-- metrics-reference -->``: the Prometheus metrics of a worker and of the sampler, from their registries.

It also lets pages include repository files (``--8<-- "docker/compose.yaml"``, pymdownx.snippets) relative to the
repository root, wherever mkdocs runs.

Nothing here is copied from the code by hand, so these pages cannot go stale. The generators are plain functions,
so tests can call them too.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority

MARKERS = ("cli-reference", "settings-reference", "schemas-reference", "metrics-reference")


ROOT = Path(__file__).resolve().parents[1]
PACKAGE_PARTS = ("streams", "classifier", "sampler", "ops")
API_SOURCE = ROOT / "build" / "api-src"  # mkdocstrings' `paths` in docs/mkdocs.yml


def package_tree(where: Path = API_SOURCE) -> Path:
    """A folder in which ``valuedrift/`` is the package as installed: links to the checkout's top-level folders.

    valuedrift is installed editable, with ``valuedrift.streams`` etc. mapped onto ``streams/`` etc. by the
    installer's import hook, which griffe (mkdocstrings' reader) does not run: it finds the modules here instead,
    and reads them from source.
    """
    package = where / "valuedrift"
    package.mkdir(parents=True, exist_ok=True)
    for part in PACKAGE_PARTS:
        link = package / part
        target = Path("..", "..", "..", part) if where == API_SOURCE else ROOT / part
        if link.is_symlink() and link.resolve() == (ROOT / part).resolve():
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    return where


@event_priority(100)  # before mkdocstrings' own on_config reads its `paths`, which must exist by then
def on_config(config: Any) -> Any:
    package_tree()
    snippets = config["mdx_configs"].setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(ROOT)]
    snippets["check_paths"] = True
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 - the hook's API
    for name in MARKERS:  # a marker on a line of its own (one quoted in the text stays as it is)
        pattern = re.compile(rf"^<!-- {name} -->[ \t]*$", flags=re.M)
        if pattern.search(markdown):
            generated = GENERATORS[name]()
            markdown = pattern.sub(lambda _, text=generated: text, markdown)
    return markdown


# ---------------------------------------------------------------------------------------------------------- helpers

_MD_SPECIAL = re.compile(r"([\\*_\[\]<>|])")


def md_escape(text: str) -> str:
    """Escape what Markdown (and a table cell) would read as markup, keep the words.

    >>> print(md_escape("default | rules | <dir> *"))
    default \\| rules \\| \\<dir\\> \\*
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code(text: str) -> str:
    """An inline code span that survives backticks and a table's pipes."""
    text = str(text).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


def _type_name(annotation: Any) -> str:
    """A short, readable name of a type annotation (``str | None`` → ``str``, ``list[Path]`` → ``Path``)."""
    if annotation is None or annotation is type(None):
        return ""
    if isinstance(annotation, str):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        return " | ".join(n for n in names if n)
    if origin in (list, tuple, set, typing.Annotated):
        args = typing.get_args(annotation)
        return _type_name(args[0]) if args else getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


# ---------------------------------------------------------------------------------------------------------- the CLI


def cli_tree() -> list[tuple[str, Any]]:
    """``(full command path, command)`` for the app and every command below it, depth first, in name order.

    Works with click commands and with Typer's own copy of click (duck-typed: a group has ``commands``).
    """
    import typer
    from valuedrift.ops.cli import app

    root = typer.main.get_command(app)
    out: list[tuple[str, Any]] = []

    def walk(cmd: Any, path: str) -> None:
        if getattr(cmd, "hidden", False):
            return
        out.append((path, cmd))
        for name in sorted(getattr(cmd, "commands", {}) or {}):
            walk(cmd.commands[name], f"{path} {name}")

    walk(root, "valuedrift")
    return out


def _param_type(p: Any) -> str:
    if getattr(p, "is_flag", False) or getattr(p, "is_bool_flag", False):
        return "flag"
    ptype = getattr(p, "type", None)
    choices = getattr(ptype, "choices", None)
    if choices:
        return " \\| ".join(code(c.value if isinstance(c, enum.Enum) else c) for c in choices)
    name = getattr(ptype, "name", None)
    if name is None:
        annotation = getattr(getattr(p, "type_descriptor", None), "annotation", None)
        name = _type_name(annotation)
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return " \\| ".join(code(m.value) for m in annotation)
    name = {"str": "text", "int": "integer", "float": "number", "Path": "path"}.get(name, name or "")
    lo, hi = getattr(p, "min", None), getattr(p, "max", None)
    if lo is not None or hi is not None:
        name += f" ({'' if lo is None else f'{lo:,}'}…{'' if hi is None else f'{hi:,}'})"
    if getattr(p, "multiple", False):
        name += ", repeatable"
    return md_escape(name)


def _param_default(p: Any) -> str:
    if getattr(p, "required", False):
        return "required"
    default = getattr(p, "default", None)
    if callable(default) or default is None or repr(default).startswith("<") or default in ((), []):
        return ""
    if isinstance(default, bool):
        if getattr(p, "secondary_opts", None):
            return code(p.opts[0] if default else p.secondary_opts[0])
        return "on" if default else ""
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(default, list | tuple):
        default = ", ".join(map(str, default))
    return code(default)


def _usage(path: str, cmd: Any) -> str:
    args = [f"{p.name.upper()}{'...' if getattr(p, 'nargs', 1) == -1 else ''}"
            for p in getattr(cmd, "params", []) if getattr(p, "param_type_name", "") == "argument"]
    opts = " [OPTIONS]" if any(getattr(p, "param_type_name", "") == "option" for p in cmd.params) else ""
    sub = " COMMAND [ARGS]..." if getattr(cmd, "commands", None) else ""
    return f"{path}{opts}{''.join(' ' + a for a in args)}{sub}"


def cli_reference() -> str:
    """Markdown for every command: a heading, usage, help text and a table of its options."""
    lines: list[str] = []
    for path, cmd in cli_tree():
        depth = path.count(" ")
        if depth:
            lines += [f"{'#' * min(depth + 1, 4)} {path}", ""]
        lines += ["```text", _usage(path, cmd), "```", ""]
        help_text = (getattr(cmd, "help", None) or getattr(cmd, "short_help", None) or "").strip()
        if help_text:
            lines += [md_escape(para) + "\n" for para in help_text.split("\n\n")]
        subs = getattr(cmd, "commands", None)
        if subs:
            lines += ["| command | what it does |", "|---|---|"]
            for name in sorted(subs):
                sub = subs[name]
                if getattr(sub, "hidden", False):
                    continue
                first = (getattr(sub, "help", None) or "").strip().split("\n\n")[0]
                anchor = re.sub(r"[^a-z0-9]+", "-", f"{path} {name}".lower()).strip("-")
                lines.append(f"| [{code(name)}](#{anchor}) | {md_escape(first)} |")
            lines.append("")
        params = [p for p in getattr(cmd, "params", []) if not getattr(p, "hidden", False)]
        if params:
            lines += ["| option | type | default | what it sets |", "|---|---|---|---|"]
            for p in params:
                if getattr(p, "param_type_name", "") == "argument":
                    name = code(p.name.upper())
                else:
                    name = " / ".join(code(o) for o in [*p.opts, *getattr(p, "secondary_opts", [])])
                lines.append(f"| {name} | {_param_type(p)} | {_param_default(p)} | {md_escape(p.help or '')} |")
            lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- settings


def settings_rows() -> list[dict[str, str]]:
    """One row per ``Settings`` field, from its declaration (``valuedrift.streams.settings.settings_reference``):
    env, option, commands, type, default, help."""
    from valuedrift.streams.settings import Settings, settings_reference

    types_ = {f.name: _type_name(f.type) for f in dataclasses.fields(Settings)}
    return [{"field": r.name, "env": r.env, "option": r.option or "", "commands": ", ".join(r.commands),
             "type": types_[r.name], "default": r.default, "help": r.help} for r in settings_reference()]


def settings_reference() -> str:
    lines = ["| environment variable | option (commands) | default | what it sets |", "|---|---|---|---|"]
    for r in settings_rows():
        option = f"{code(r['option'])} ({r['commands']})" if r["option"] else ""
        default = code(r["default"]) if r["default"] else "empty"
        lines.append(f"| {code(r['env'])} | {option} | {default} | {md_escape(r['help'])} ({r['type']}) |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------- schemas


def _schema_type(s: dict[str, Any]) -> str:
    if "$ref" in s:
        return s["$ref"].rsplit("/", 1)[-1]
    if "const" in s:
        return f"{s.get('type', 'value')}, always {json.dumps(s['const'])}"
    if "enum" in s:
        return " | ".join(json.dumps(v) for v in s["enum"])
    if "anyOf" in s or "oneOf" in s:
        return " or ".join(_schema_type(x) for x in s.get("anyOf", s.get("oneOf")))
    t = s.get("type", "any")
    if t == "array":
        return f"array of {_schema_type(s.get('items', {}))}"
    if t == "object" and isinstance(s.get("additionalProperties"), dict):
        return f"object of {_schema_type(s['additionalProperties'])}"
    return str(t) + (f" ({s['format']})" if "format" in s else "")


def _description(text: str) -> str:
    """A schema description without its doctest examples."""
    kept = []
    for line in text.split("\n"):
        if line.lstrip().startswith(">>>"):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _fields_table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    lines = ["| field | type | required | default | description |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        default = code(json.dumps(prop["default"])) if "default" in prop else ""
        desc = prop.get("description", "")
        for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minLength", "maxLength"):
            if key in prop:
                desc += f" ({key} {prop[key]})"
        lines.append(f"| {code(name)} | {md_escape(_schema_type(prop))} | {'yes' if name in required else ''} | "
                     f"{default} | {md_escape(desc)} |")
    return lines


def schemas_reference() -> str:
    from valuedrift.streams.core.records import dump_schema, json_schemas

    lines: list[str] = []
    for filename, schema in sorted(json_schemas().items()):
        title = filename.removesuffix(".schema.json")
        lines += [f"## {title}", ""]
        topic = schema.get("x-topic")
        lines += [f"Topic: {code('<prefix>' + topic) if topic else '(none)'}; schema id {code(schema.get('$id', ''))}; "
                  f"file {code('streams/schemas/' + filename)}.", ""]
        desc = _description(schema.get("description", ""))
        if desc:
            lines += [md_escape(para) + "\n" for para in desc.split("\n\n")]
        lines += [*_fields_table(schema), ""]
        for def_name, sub in schema.get("$defs", {}).items():
            lines += [f"### {title}: {def_name}", ""]
            sub_desc = _description(sub.get("description", ""))
            if sub_desc:
                lines += [md_escape(sub_desc), ""]
            lines += [*_fields_table(sub), ""]
        lines += [f'??? note "{filename}"', "", "    ```json"]
        lines += ["    " + line if line else "" for line in dump_schema(schema).rstrip("\n").split("\n")]
        lines += ["    ```", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- metrics


def _metric_rows(registry: Any) -> list[str]:
    rows = []
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = sorted({k for sample in family.samples for k in sample.labels if k not in ("le", "quantile")})
        for collector in getattr(registry, "_collector_to_names", {}):  # labels of series not yet created
            if getattr(collector, "_name", None) == family.name:
                labels = list(getattr(collector, "_labelnames", labels))
        rows.append(f"| {code(name)} | {family.type} | {', '.join(code(x) for x in labels)} | "
                    f"{md_escape(family.documentation)} |")
    return rows


def metrics_reference() -> str:
    """The Prometheus metrics of a worker and of the sampler, from their registries."""
    from prometheus_client import CollectorRegistry
    from valuedrift.sampler.metrics import SamplerMetrics
    from valuedrift.streams.worker.metrics import WorkerMetrics

    header = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    sampler = CollectorRegistry()
    SamplerMetrics(registry=sampler)
    return "\n".join(["**Worker**", "", *header, *_metric_rows(WorkerMetrics().registry), "",
                      "**Sampler** (`valuedrift sampler run --metrics-port`)", "", *header, *_metric_rows(sampler),
                      ""])


GENERATORS = {"cli-reference": cli_reference, "settings-reference": settings_reference,
              "schemas-reference": schemas_reference, "metrics-reference": metrics_reference}

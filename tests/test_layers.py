"""The import graph: no cycles, and no import from a lower layer to a higher one (docs/pages/architecture.md).

Every import counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("streams", "classifier", "sampler", "ops")

# Lowest first. A module may import its own layer and those below it.
LAYERS = (
    ("core", ("valuedrift.streams.core",)),  # pure statistics, records, category codes: no Kafka, no models
    ("classifier", ("valuedrift.classifier",)),
    ("pipeline", ("valuedrift.streams",)),  # settings, input adapters, the per-record core, offline runs, sinks
    ("worker", ("valuedrift.streams.worker",)),  # the Kafka worker: needs a broker
    ("sampler", ("valuedrift.sampler",)),
    ("ops", ("valuedrift.ops",)),
)


def layer_of(module: str) -> int:
    """The layer of a module: that of its longest matching package prefix."""
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS here and to docs/pages/architecture.md"
    return rank


def modules() -> dict[str, Path]:
    out = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("valuedrift", *parts))
            out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The valuedrift modules a file imports (``from pkg import mod`` counts as ``pkg.mod`` when mod is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("valuedrift."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("valuedrift."):
            subs = {f"{node.module}.{a.name}" for a in node.names} & known.keys()
            found.update(subs or {node.module})
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(p, known) - {m} for m, p in known.items()}


def test_every_module_has_a_layer():
    for m in modules():
        layer_of(m)


def test_no_import_goes_up_a_layer():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
              for m, deps in graph().items() for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a list of modules, or None.

    >>> find_cycle({"a": {"b"}, "b": {"a"}})
    ['a', 'b', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for d in sorted(g.get(n, ())):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        path.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_hidden_cycle():
    g = {"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": set()}
    assert find_cycle(g) == ["x", "y", "z", "x"]

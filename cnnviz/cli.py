"""The ``cnnviz`` command line: the only place that parses arguments."""

from __future__ import annotations

import argparse
from dataclasses import fields
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from .checkpoints import CheckpointError, import_weights, load_checkpoint, paths_for
from .inspect.architecture import parameter_count
from .data import PROFILES, DatasetError, Preprocess, download_cifar10, profile
from .models import UnknownModelError, list_models, model_spec

class UsageError(ValueError):
    """A command-line value that cannot be used."""


_USER_ERRORS = (DatasetError, CheckpointError, FileNotFoundError, UnknownModelError, UsageError)


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip())


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:1")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast where the hardware runs it fast, else fp32")
    p.add_argument("--cache-dir", default=None, help="decoded-image cache (default $CNNVIZ_CACHE or ~/.cache/cnnviz)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnviz", description="Train, evaluate and inspect CNNs.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and save a checkpoint")
    t.add_argument("--data", required=True, help="dataset folder or zip (train/test inside, or a class tree)")
    t.add_argument("--dataset", default="cifar10", choices=sorted(PROFILES), help="dataset kind (sets defaults)")
    t.add_argument("--model", default=None, help=f"architecture: {', '.join(list_models())}")
    t.add_argument("--out", required=True, help="checkpoint path without suffix, e.g. checkpoints/cifar10_fast")
    t.add_argument("--epochs", type=float, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--label-smoothing", type=float, default=None)
    t.add_argument("--size", type=int, default=None, help="input size in px (default: the dataset's)")
    t.add_argument("--resize", default=None, choices=["squash", "center_crop", "pad"],
                   help="how frames of other shapes become square")
    t.add_argument("--val-fraction", type=float, default=None, help="stratified validation share")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--class-balance", default=None, choices=["none", "loss", "sampler"])
    t.add_argument("--snapshot-epochs", type=_csv_ints, default=None, help="e.g. 1,2,5,10")
    t.add_argument("--snapshot-scope", default=None, choices=["all", "first_conv"],
                   help="what snapshots keep: all weights, or only the first convolution (small)")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--max-minutes", type=float, default=None,
                   help="cap the training time; the schedule is fitted to the measured speed")
    t.add_argument("--model-arg", action="append", default=[], metavar="KEY=JSON",
                   help="architecture argument, e.g. --model-arg width=0.5 --model-arg fc6=1024")
    t.add_argument("--train-arg", action="append", default=[], metavar="KEY=JSON",
                   help="any other training option, e.g. --train-arg translate=6 --train-arg weight_decay=1e-3")
    t.add_argument("--no-test", action="store_true", help="do not score the test split at the end")
    _add_runtime_args(t)

    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall and confusion matrix")
    e.add_argument("checkpoint")
    e.add_argument("--data", required=True, help="dataset folder or zip, any supported layout")
    e.add_argument("--split", default="test", choices=["test", "val", "train"])
    e.add_argument("--tta", default=None, choices=["none", "flip", "flip_translate"],
                   help="test-time augmentation (default: the checkpoint's)")
    e.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    _add_runtime_args(e)

    pr = sub.add_parser("predict", help="predict every image of a folder or zip, write a CSV")
    pr.add_argument("checkpoint")
    pr.add_argument("images", help="folder or zip of images (e.g. the competition's test/ of <n>.jpg)")
    pr.add_argument("--out", required=True, help="CSV to write (id,character)")
    pr.add_argument("--probabilities", action="store_true", help="add one probability column per class")
    _add_runtime_args(pr)

    f = sub.add_parser("figures", help="write lecture figures (PNG + HTML) for a checkpoint")
    f.add_argument("checkpoint")
    f.add_argument("--out", required=True, help="folder for the figures")
    f.add_argument("--data", default=None, help="dataset (adds neighbours and the confusion matrix)")
    f.add_argument("--image", default=None, help="image for the feature maps (default: first test image)")
    f.add_argument("--layer", default=None, help="layer for the feature maps (default: a middle conv)")
    f.add_argument("-k", type=int, default=6, help="neighbours to show")

    im = sub.add_parser("import", help="make a checkpoint of your own weights (.pt/.pth/.safetensors)",
                        description="Describe a bare state dict (architecture, classes, input size, "
                                    "normalisation) and save it as a cnnviz checkpoint for the CLI and dashboard.")
    im.add_argument("weights", help=".safetensors, or .pt/.pth saved with torch.save(model.state_dict(), ...)")
    im.add_argument("--arch", required=True, help=f"architecture: {', '.join(list_models())}")
    cls = im.add_mutually_exclusive_group(required=True)
    cls.add_argument("--classes", help="class names in the order of the model's outputs, e.g. cat,dog,bird")
    cls.add_argument("--classes-file", help="text file with one class name per line, in output order")
    im.add_argument("--size", type=int, required=True, help="input size in px the weights were trained at")
    im.add_argument("--resize", default="squash", choices=["squash", "center_crop", "pad"],
                    help="how frames of other shapes become square")
    im.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), default=None,
                    help="normalisation mean in [0, 1] units (default ImageNet's 0.485 0.456 0.406)")
    im.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), default=None,
                    help="normalisation std in [0, 1] units (default ImageNet's 0.229 0.224 0.225)")
    im.add_argument("--model-arg", action="append", default=[], metavar="KEY=JSON",
                    help="architecture argument the weights were built with, e.g. --model-arg width=0.5")
    im.add_argument("--dataset", default="folder", choices=sorted(PROFILES), help="dataset kind the model is for")
    im.add_argument("--out", required=True, help="checkpoint path without suffix, e.g. checkpoints/my_model")
    im.add_argument("--force", action="store_true", help="overwrite an existing checkpoint at --out")

    i = sub.add_parser("info", help="describe a checkpoint")
    i.add_argument("checkpoint")

    sub.add_parser("models", help="list the registered architectures")

    d = sub.add_parser("download", help="download a dataset with torchvision (needs the network)")
    d.add_argument("name", choices=["cifar10"])
    d.add_argument("--root", required=True)
    return parser


def _parse_key_values(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not _ or not key:
            raise UsageError(f"{item!r}: write KEY=VALUE, e.g. width=0.5")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train_checkpoint

    prof = profile(args.dataset)
    pre = Preprocess(args.size or prof.preprocess.size, args.resize or prof.preprocess.mode)
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     label_smoothing=args.label_smoothing, seed=args.seed,
                     class_balance=args.class_balance, snapshot_epochs=args.snapshot_epochs,
                     snapshot_scope=args.snapshot_scope,
                     threads=args.threads, max_minutes=args.max_minutes, device=args.device, precision=args.precision,
                     **_parse_key_values(args.train_arg))
    model = args.model or prof.default_model
    model_spec(model)  # fail early on an unknown name
    unknown = sorted(set(overrides) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise UsageError(f"unknown training option(s) {', '.join(unknown)}; known: "
                         f"{', '.join(f.name for f in fields(TrainConfig))}")
    t0 = time.perf_counter()
    ckpt = train_checkpoint(args.data, args.out, dataset=args.dataset, model=model,
                            model_kwargs=_parse_key_values(args.model_arg), preprocess=pre,
                            val_fraction=args.val_fraction, overrides=overrides,
                            evaluate_test=not args.no_test, cache_dir=args.cache_dir)
    m = ckpt.meta.metrics
    print(f"saved {ckpt.path} and {paths_for(ckpt.path)[1]}")
    for split in ("val", "test"):
        if split in m:
            print(f"{split} accuracy: {m[split]['accuracy']:.4f}  macro recall: {m[split]['macro_recall']:.4f}")
    print(f"wall time: {time.perf_counter() - t0:.1f} s")
    return 0


def _read_classes(args: argparse.Namespace) -> list[str]:
    if args.classes_file is None:
        return [c.strip() for c in args.classes.split(",")]
    path = Path(args.classes_file)
    if not path.is_file():
        raise UsageError(f"no classes file at {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cmd_import(args: argparse.Namespace) -> int:
    from .inputs import Normalization

    if (args.mean is None) != (args.std is None):
        raise UsageError("give both --mean and --std, or neither (ImageNet's are the default)")
    norm = Normalization(tuple(args.mean), tuple(args.std)) if args.mean is not None else None
    ckpt = import_weights(args.weights, args.out, args.arch, _read_classes(args), args.size,
                          arch_kwargs=_parse_key_values(args.model_arg), resize=args.resize,
                          normalization=norm, dataset=args.dataset, overwrite=args.force)
    m = ckpt.meta
    n_params = parameter_count(ckpt.model)
    print(f"saved {ckpt.path} and {paths_for(ckpt.path)[1]}")
    print(f"{ckpt.name}: {m.arch} {m.arch_kwargs or ''} ({n_params:,} parameters), {len(m.classes)} classes, "
          f"input {m.input_size}x{m.input_size} ({m.preprocess.mode}), from {m.info['source_file']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint
    from .runtime import resolve_runtime

    ckpt = load_checkpoint(args.checkpoint)
    rt = resolve_runtime(args.device, args.precision)
    report = evaluate_checkpoint(ckpt, args.data, args.split, args.tta, rt, args.cache_dir, progress=True)
    stem = ckpt.path.with_suffix("")
    out = stem.with_name(f"{stem.name}.eval-{args.split}.json")
    out.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.format_table())
        print(f"saved {out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import predict_folder
    from .runtime import resolve_runtime

    ckpt = load_checkpoint(args.checkpoint)
    preds = predict_folder(ckpt, args.images, resolve_runtime(args.device, args.precision),
                           cache_dir=args.cache_dir, progress=True)
    Path(args.out).write_text(preds.to_csv(probabilities=args.probabilities))
    print(f"wrote {len(preds.ids)} predictions to {args.out}")
    if preds.unreadable:
        print(f"{len(preds.unreadable)} image(s) could not be read and have no prediction:", file=sys.stderr)
        for name in preds.unreadable:
            print(f"  {name}", file=sys.stderr)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from .lecture import write_lecture_figures

    ckpt = load_checkpoint(args.checkpoint)
    res = write_lecture_figures(ckpt, args.out, args.data, args.image, args.layer, args.k, progress=True)
    for name in res.png:
        print(f"{name}: {res.png[name]}  {res.html.get(name, '')}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    m = ckpt.meta
    n_params = parameter_count(ckpt.model)
    print(f"checkpoint: {ckpt.path}")
    print(f"architecture: {m.arch} {m.arch_kwargs or ''} ({n_params:,} parameters)")
    print(f"dataset: {m.dataset}, {len(m.classes)} classes: {', '.join(m.classes)}")
    print(f"input: {m.preprocess.size}x{m.preprocess.size} ({m.preprocess.mode}), tta: {m.tta}")
    if m.split:
        print(f"validation split: {len(m.split.val_indices)} of {m.split.n_total} (seed {m.split.seed})")
    for split, rep in m.metrics.items():
        print(f"{split} accuracy: {rep['accuracy']:.4f}  macro recall: {rep['macro_recall']:.4f}")
    if m.info.get("imported"):
        print(f"imported from {m.info.get('source_file', '?')} (sha256 {m.info.get('source_sha256', '?')[:12]}), "
              "no training history")
    if m.history:
        print(f"trained {len(m.history)} epochs in {m.info.get('train_seconds', '?')} s on {m.info.get('runtime', '?')}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for name in list_models():
        print(f"{name:15s} {model_spec(name).description}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    path = download_cifar10(args.root)
    print(f"CIFAR-10 is in {path}; use --data {args.root}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"train": cmd_train, "evaluate": cmd_evaluate, "info": cmd_info,
               "models": cmd_models, "import": cmd_import, "predict": cmd_predict, "figures": cmd_figures, "download": cmd_download}[args.command]
    try:
        return handler(args)
    except _USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError quotes its text
        print(f"cnnviz {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``cnnviz`` argument parser: every command, option and its help; the only place that
parses arguments. Options a user leaves out stay ``None``: their defaults live in the library."""

from __future__ import annotations

import argparse
import inspect
import json
from typing import Any, Sequence, get_args

from ..checkpoint_meta import TTA_MODES
from ..checkpoints import import_weights
from ..distributed import BACKENDS
from ..data import PROFILES, RESIZE_MODES
from ..evaluate import evaluate_checkpoint
from ..gallery import CODECS
from ..models import list_models
from ..pretrained import list_pretrained
from ..runtime import Precision
from ..train import DEFAULT_DATASET


class UsageError(ValueError):
    """A command-line value that cannot be used."""


def _default(fn: Any, name: str) -> Any:
    """The library's default for ``fn``'s argument ``name`` (for help texts)."""
    return inspect.signature(fn).parameters[name].default


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip())


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="auto (the default: CUDA if present, else CPU), cpu, cuda, cuda:1")
    p.add_argument("--precision", default=None, choices=get_args(Precision),
                   help="auto (the default): bf16 autocast where the hardware runs it fast, else fp32")
    p.add_argument("--cache-dir", default=None, help="decoded-image cache (default $CNNVIZ_CACHE or ~/.cache/cnnviz)")


def _add_data_arg(p: argparse.ArgumentParser) -> None:
    """``--data``, optional: where the checkpoint's dataset is looked for without it."""
    p.add_argument("--data", default=None, help="dataset (default: $CNNVIZ_DATA/<dataset>, else the user data "
                                                "folder's copy, else the checkpoint's demo gallery)")


def _add_dist_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dist-backend", default=None, choices=BACKENDS,
                   help="under torchrun: how the processes talk (default auto: nccl on CUDA, gloo on the CPU)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnviz", description="Train, evaluate and inspect CNNs.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_inference(sub)
    _add_import(sub)
    i = sub.add_parser("info", help="describe a checkpoint")
    i.add_argument("checkpoint")

    sub.add_parser("models", help="list the registered architectures")

    u = sub.add_parser("units", help="the unit atlas of a layer: top/bottom patches and knock-out, PNG + HTML",
                       description="For each channel of a layer: the training images where it fires most and least, "
                                   "cropped to the receptive field of its peak (PNG), and what zeroing it costs each "
                                   "class on held-out images; one offline HTML page for all of them.")
    u.add_argument("checkpoint")
    u.add_argument("--out", required=True, help="folder for unit_<channel>.png and atlas.html")
    _add_data_arg(u)
    u.add_argument("--layer", default=None, help="a convolution (default: a middle one)")
    u.add_argument("--channels", default=None, help="e.g. 0,5,17 (default: every channel)")
    u.add_argument("-k", type=int, default=None, help="top and bottom images per channel (default 9)")
    u.add_argument("--steps", type=int, default=None, help="feature-visualisation steps per batch of channels "
                                                           "(default 256; 0: no favourite images)")
    _add_dist_args(u)

    fe = sub.add_parser("features", help="fill the on-disk cache of penultimate features the dashboard's "
                                         "Neighbours and Mistakes pages read",
                        description="One pass over a split's images computes each image's penultimate features "
                                    "and logits and stores them in the feature cache (keyed by the weights, the "
                                    "data and the split), where the dashboard finds them instead of computing them "
                                    "itself. Under torchrun the processes share the pass.")
    fe.add_argument("checkpoint")
    _add_data_arg(fe)
    fe.add_argument("--split", action="append", default=None, choices=["train", "val", "test"],
                    help="a split to do; repeat for more (default: train and the held-out split the dashboard "
                         "shows: test, else val)")
    fe.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default 128)")
    fe.add_argument("--device", default=None, help="auto (the default: CUDA if present, else CPU), cpu, cuda")
    fe.add_argument("--precision", default=None, choices=get_args(Precision),
                    help="auto (the default): bf16 autocast where the hardware runs it fast, else fp32")
    fe.add_argument("--cache-dir", default=None, help="cache of decoded images and features (default "
                                                      "$CNNVIZ_CACHE or ~/.cache/cnnviz, where the dashboard looks)")
    _add_dist_args(fe)

    a = sub.add_parser("attribution-check", help="can each attribution method be trusted on this model? "
                                                 "faithfulness and the randomisation sanity check",
                       description="On a seeded sample of held-out images, explaining the predicted class: deletion "
                                   "and insertion areas of each method against random and Sobel-edge maps, and the "
                                   "Spearman correlation of each method's map with the trained model's as layers are "
                                   "randomised from the top down (Adebayo et al., 2018).")
    a.add_argument("checkpoint")
    _add_data_arg(a)
    a.add_argument("--n", type=int, default=200, help="held-out images (default 200)")
    a.add_argument("--methods", default=None, help="comma-separated, e.g. saliency,grad_cam (default: all five)")
    a.add_argument("--steps", type=int, default=None, help="deletion/insertion steps (default 16)")
    a.add_argument("--ig-steps", type=int, default=None, help="integrated-gradients steps (default 32)")
    a.add_argument("--seed", type=int, default=0, help="sample and randomisation seed (default 0)")
    a.add_argument("--only", choices=["faithfulness", "sanity"], default=None, help="run one of the two checks")
    a.add_argument("--json", default=None, help="also write every number to this JSON file")

    g = sub.add_parser("gallery", help="ship a demo gallery of real images beside a checkpoint",
                       description="Take a stratified sample of the checkpoint's training images and of images it "
                                   "never trained on (the test split, else its validation split), after its "
                                   "preprocessing, in the codec with the smallest pixel error that fits the size "
                                   "limit; writes OUT.gallery.zip and OUT.gallery.json (source, indices, codec "
                                   "trials, attribution). The only way dataset images enter the repository.")
    g.add_argument("checkpoint")
    g.add_argument("--data", required=True, help="the dataset the checkpoint was trained on")
    g.add_argument("--out", required=True, help="output prefix, e.g. checkpoints/cifar10 (writes .gallery.zip/.json)")
    g.add_argument("--train", type=int, default=None, help="training images (default 5,000 for CIFAR-10, else 3,000)")
    g.add_argument("--heldout", type=int, default=None, help="held-out images (default 1,000 for CIFAR-10, else 600)")
    g.add_argument("--codec", default=None, choices=["auto", *CODECS], help="default: auto")
    g.add_argument("--max-mb", type=float, default=None, help="size limit in MB (default 12)")
    g.add_argument("--attribution", default=None, help="the dataset's source and licence line (known for "
                                                       "cifar10 and simpsons)")
    g.add_argument("--cache-dir", default=None, help="decoded-image cache (default $CNNVIZ_CACHE or ~/.cache/cnnviz)")

    d = sub.add_parser("download", help="download a dataset into the user data folder (needs the network)")
    d.add_argument("name", choices=["cifar10", "simpsons"],
                   help="cifar10 (torchvision's archive) or simpsons (Kaggle, through kagglehub)")
    d.add_argument("--root", default=None,
                   help="folder to download into, as ROOT/NAME (default: the user data folder, "
                        "$CNNVIZ_CACHE/datasets or ~/.cache/cnnviz/datasets)")
    d.add_argument("--force", action="store_true", help="download again, replacing a copy already there")
    return parser


def _add_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model and save a checkpoint",
                       description="Options left out take the dataset kind's defaults and the model's "
                                   "training recipe (`cnnviz models` lists the models).")
    t.add_argument("--data", required=True, help="dataset folder or zip (train/test inside, or a class tree)")
    t.add_argument("--dataset", default=None, choices=sorted(PROFILES),
                   help=f"dataset kind, which sets the defaults (default: {DEFAULT_DATASET})")
    t.add_argument("--model", default=None, help=f"architecture: {', '.join(list_models())}")
    t.add_argument("--out", required=True, help="checkpoint path without suffix, e.g. checkpoints/cifar10_fast")
    t.add_argument("--force", action="store_true", help="overwrite an existing checkpoint at --out "
                   "(and start again over an unfinished run's saved state)")
    t.add_argument("--resume", action="store_true",
                   help="go on from the state an unfinished run saved beside --out (after every epoch); "
                        "give the same options as that run")
    t.add_argument("--stop-after-minutes", type=float, default=None, metavar="T",
                   help="stop at the end of the first epoch past T minutes, keeping the state: "
                        "a long run in parts (continue with --resume)")
    t.add_argument("--epochs", type=float, default=None)
    t.add_argument("--batch-size", type=int, default=None,
                   help="images per step, in all (under torchrun: shared by the processes)")
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--label-smoothing", type=float, default=None)
    t.add_argument("--size", type=int, default=None, help="input size in px (default: the dataset's)")
    t.add_argument("--resize", default=None, choices=RESIZE_MODES, help="how frames of other shapes become square")
    t.add_argument("--val-fraction", type=float, default=None, help="stratified validation share, in [0, 1)")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--class-balance", default=None, choices=["none", "loss", "sampler"])
    t.add_argument("--snapshot-epochs", type=_csv_ints, default=None, help="e.g. 0,1,2,5,10 (0: as initialised)")
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
    t.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun: BatchNorm statistics over the whole global batch, not each process's share")
    _add_runtime_args(t)
    _add_dist_args(t)


def _add_inference(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="accuracy, per-class precision/recall and confusion matrix")
    e.add_argument("checkpoint")
    e.add_argument("--data", default=None, help="dataset folder or zip, any supported layout (default: "
                   "$CNNVIZ_DATA/<dataset>, else the user data folder's copy, else the checkpoint's demo gallery)")
    e.add_argument("--split", default=None, choices=["test", "val", "train"],
                   help=f"default: {_default(evaluate_checkpoint, 'split')}")
    e.add_argument("--tta", default=None, choices=TTA_MODES,
                   help="test-time augmentation (default: the checkpoint's)")
    e.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    _add_runtime_args(e)
    _add_dist_args(e)

    pr = sub.add_parser("predict", help="predict every image of a folder or zip, write a CSV")
    pr.add_argument("checkpoint")
    pr.add_argument("images", help="folder or zip of images (e.g. the competition's test/ of <n>.jpg)")
    pr.add_argument("--out", required=True, help="CSV to write (id,character)")
    pr.add_argument("--probabilities", action="store_true", help="add one probability column per class")
    _add_runtime_args(pr)

    f = sub.add_parser("figures", help="write lecture figures (PNG + HTML) for a checkpoint")
    f.add_argument("checkpoint")
    f.add_argument("--out", required=True, help="folder for the figures")
    f.add_argument("--data", default=None, help="dataset (adds neighbours and the confusion matrix; default: "
                   "$CNNVIZ_DATA/<dataset>, else the user data folder's copy, else the checkpoint's demo gallery)")
    f.add_argument("--image", default=None, help="image for the feature maps (default: first test image)")
    f.add_argument("--layer", default=None, help="layer for the feature maps (default: a middle conv)")
    f.add_argument("-k", type=int, default=None, help="neighbours to show")
    f.add_argument("--deck", action="store_true",
                   help="also write the lecture sequence as slides: deck/NN_step.png (at least 1,600 px wide) "
                        "and deck.html, one offline file to present with the arrow keys or PageUp/PageDown")


def _add_import(sub: argparse._SubParsersAction) -> None:
    im = sub.add_parser("import", help="make a checkpoint of your own weights (.pt/.pth/.safetensors) "
                                       "or of torchvision's ImageNet weights (--pretrained)",
                        description="Describe a bare state dict (architecture, classes, input size, "
                                    "normalisation) and save it as a cnnviz checkpoint for the CLI and dashboard; "
                                    "or, with --pretrained NAME, save torchvision's ImageNet weights for NAME, "
                                    "which describe themselves (taken from torch.hub's cache, downloaded there "
                                    "if missing).")
    source = im.add_mutually_exclusive_group(required=True)
    source.add_argument("weights", nargs="?", default=None, metavar="WEIGHTS",
                        help=".safetensors, or .pt/.pth saved with torch.save(model.state_dict(), ...)")
    source.add_argument("--pretrained", default=None, choices=list_pretrained(), metavar="NAME",
                        help=f"torchvision's ImageNet weights for {', '.join(list_pretrained())} (1,000 classes, "
                             "224 px); needs the network once, or the file in torch.hub's cache")
    im.add_argument("--arch", default=None, help=f"architecture: {', '.join(list_models())}")
    cls = im.add_mutually_exclusive_group()
    cls.add_argument("--classes", help="class names in the order of the model's outputs, e.g. cat,dog,bird")
    cls.add_argument("--classes-file", help="text file with one class name per line, in output order")
    im.add_argument("--size", type=int, default=None, help="input size in px the weights were trained at")
    im.add_argument("--resize", default=None, choices=RESIZE_MODES,
                    help=f"how frames of other shapes become square (default: {_default(import_weights, 'resize')})")
    im.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"), default=None,
                    help="normalisation mean in [0, 1] units (default ImageNet's 0.485 0.456 0.406)")
    im.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), default=None,
                    help="normalisation std in [0, 1] units (default ImageNet's 0.229 0.224 0.225)")
    im.add_argument("--model-arg", action="append", default=[], metavar="KEY=JSON",
                    help="architecture argument the weights were built with, e.g. --model-arg width=0.5")
    im.add_argument("--dataset", default=None, choices=sorted(PROFILES),
                    help=f"dataset kind the model is for (default: {_default(import_weights, 'dataset')})")
    im.add_argument("--out", required=True, help="checkpoint path without suffix, e.g. checkpoints/my_model")
    im.add_argument("--force", action="store_true", help="overwrite an existing checkpoint at --out")
    im.set_defaults(check_import=lambda args: _check_import(im, args))


_DESCRIBING = ("arch", "classes", "classes_file", "size", "resize", "mean", "std", "model_arg", "dataset")
"""``cnnviz import`` options that describe a user's WEIGHTS; --pretrained weights describe themselves."""


def _check_import(im: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse cannot say about ``cnnviz import`` alone: WEIGHTS needs --arch, classes and
    --size; --pretrained takes none of the describing options. Refusals exit like argparse's (2)."""
    if args.pretrained is not None:
        extra = [f"--{k.replace('_', '-')}" for k in _DESCRIBING if getattr(args, k) not in (None, [])]
        if extra:
            im.error(f"--pretrained {args.pretrained} sets the architecture, classes, input size, preprocessing "
                     f"and normalisation itself: leave out {', '.join(extra)}")
        return
    missing = [flag for flag, value in (("--arch", args.arch), ("--size", args.size)) if value is None]
    if missing:
        im.error(f"the following arguments are required: {', '.join(missing)} (with WEIGHTS; "
                 "or use --pretrained NAME)")
    if args.classes is None and args.classes_file is None:
        im.error("one of the arguments --classes --classes-file is required (with WEIGHTS)")


def parse_key_values(items: Sequence[str], flag: str) -> dict:
    """``["width=0.5", "widths=[8,8,8]"]`` -> ``{"width": 0.5, "widths": (8, 8, 8)}`` (JSON values,
    else the text itself; lists become tuples)."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UsageError(f"{flag} {item!r}: write KEY=VALUE, e.g. width=0.5")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out

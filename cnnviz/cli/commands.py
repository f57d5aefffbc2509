"""What each ``cnnviz`` command does with its parsed arguments: one library call, then printing."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..checkpoints import Checkpoint, checkpoint_data, held_out_data, import_weights, load_checkpoint, paths_for
from ..distributed import is_main, leader_first, process_group
from ..gallery import gallery_paths
from ..inspect.units import check_channels
from ..locate import DataChoice, locate_data
from ..data import download_dataset
from ..evaluate import evaluate_checkpoint
from ..inspect.architecture import parameter_count
from ..models import list_models, model_spec
from ..pretrained import import_pretrained
from ..runtime import Runtime, resolve_runtime
from .parser import UsageError, parse_key_values


def given(**options: Any) -> dict[str, Any]:
    """The options the user set: defaults live in the library, never here."""
    return {k: v for k, v in options.items() if v is not None}


def _runtime(args: argparse.Namespace) -> Runtime:
    """The runtime ``--device``/``--precision`` ask for (the library's defaults otherwise)."""
    try:
        return resolve_runtime(**given(device=args.device, precision=args.precision))
    except RuntimeError as e:
        raise UsageError(f"--device cannot be used here: {str(e).splitlines()[0]}") from None


def _backend(args: argparse.Namespace) -> str:
    return args.dist_backend or "auto"


def cmd_train(args: argparse.Namespace) -> int:
    from ..train import TrainPart, train_checkpoint

    overrides = given(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      label_smoothing=args.label_smoothing, seed=args.seed, class_balance=args.class_balance,
                      snapshot_epochs=args.snapshot_epochs, snapshot_scope=args.snapshot_scope,
                      threads=args.threads, max_minutes=args.max_minutes, device=args.device,
                      precision=args.precision, sync_bn=args.sync_bn)
    overrides |= parse_key_values(args.train_arg, "--train-arg")
    choices = given(dataset=args.dataset, model=args.model, size=args.size, resize=args.resize,
                    val_fraction=args.val_fraction)
    t0 = time.perf_counter()
    device = overrides.get("device")
    with process_group(device if isinstance(device, str) else None, _backend(args)):
        ckpt = train_checkpoint(args.data, args.out, model_kwargs=parse_key_values(args.model_arg, "--model-arg"),
                                overrides=overrides, evaluate_test=not args.no_test, cache_dir=args.cache_dir,
                                overwrite=args.force, resume=args.resume,
                                stop_after_minutes=args.stop_after_minutes, **choices)
    if ckpt is None:  # another rank of a torchrun launch: rank 0 saved and reports
        return 0
    if isinstance(ckpt, TrainPart):
        print(f"stopped after epoch {ckpt.epoch} ({ckpt.steps} of {ckpt.total_steps} steps, "
              f"{ckpt.seconds:.0f} s of training so far); its state is saved in {ckpt.state}.\n"
              "Run the same command with --resume to go on.")
        return 0
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
    from ..inputs import Normalization

    args.check_import(args)
    if args.pretrained is not None:
        ckpt = import_pretrained(args.pretrained, args.out, overwrite=args.force, progress=True)
    else:
        if (args.mean is None) != (args.std is None):
            raise UsageError("give both --mean and --std, or neither (ImageNet's are the default)")
        norm = Normalization(tuple(args.mean), tuple(args.std)) if args.mean is not None else None
        ckpt = import_weights(args.weights, args.out, args.arch, _read_classes(args), args.size,
                              arch_kwargs=parse_key_values(args.model_arg, "--model-arg"), normalization=norm,
                              overwrite=args.force, **given(resize=args.resize, dataset=args.dataset))
    m = ckpt.meta
    n_params = parameter_count(ckpt.model)
    print(f"saved {ckpt.path} and {paths_for(ckpt.path)[1]}")
    print(f"{ckpt.name}: {m.arch} {m.arch_kwargs or ''} ({n_params:,} parameters), {len(m.classes)} classes, "
          f"input {m.input_size}x{m.input_size} ({m.preprocess.mode}), "
          f"from {m.info.get('pretrained') or m.info['source_file']}")
    return 0


def _data_for(ckpt: Checkpoint, given_path: str | None) -> DataChoice:
    """The data a command uses (:func:`cnnviz.locate.locate_data`'s order), said on stderr when
    the user did not name it."""
    choice = locate_data(ckpt.meta, ckpt.path, given_path)
    if choice is None:
        raise UsageError(f"no data for {ckpt.name}: give --data, set $CNNVIZ_DATA, or run `cnnviz download "
                         f"{ckpt.meta.dataset}`" if ckpt.meta.dataset in ("cifar10", "simpsons") else
                         f"no data for {ckpt.name}: give --data (a folder with one sub-folder per class)")
    if choice.origin != "given" and is_main():
        print(f"data: {choice.describe()}", file=sys.stderr)
    return choice


def cmd_evaluate(args: argparse.Namespace) -> int:
    with process_group(args.device, _backend(args)):
        rt = _runtime(args)
        ckpt = load_checkpoint(args.checkpoint, runtime=rt)
        choice = _data_for(ckpt, args.data)
        split = args.split or (choice.gallery.heldout.source_split if choice.gallery else None)
        report = evaluate_checkpoint(ckpt, choice.path, runtime=rt, cache_dir=args.cache_dir, progress=is_main(),
                                     distributed=True, **given(split=split, tta=args.tta))
        if not is_main():  # another rank of a torchrun launch: rank 0 writes and reports
            return 0
    stem = ckpt.path.with_suffix("")
    out = stem.with_name(f"{stem.name}.eval-{report.split}.json")
    out.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.format_table())
        print(f"saved {out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..predict import predict_folder

    rt = _runtime(args)
    ckpt = load_checkpoint(args.checkpoint, runtime=rt)
    preds = predict_folder(ckpt, args.images, rt, cache_dir=args.cache_dir, progress=True)
    Path(args.out).write_text(preds.to_csv(probabilities=args.probabilities))
    print(f"wrote {len(preds.ids)} predictions to {args.out}")
    if preds.unreadable:
        print(f"{len(preds.unreadable)} image(s) could not be read and have no prediction:", file=sys.stderr)
        for name in preds.unreadable:
            print(f"  {name}", file=sys.stderr)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from ..lecture import FigureError, write_lecture_figures

    ckpt = load_checkpoint(args.checkpoint)
    choice = locate_data(ckpt.meta, ckpt.path, args.data)
    if choice is not None and choice.origin != "given":
        print(f"data: {choice.describe()}", file=sys.stderr)
    try:
        res = write_lecture_figures(ckpt, args.out, choice.path if choice else None, args.image, args.layer, progress=True,
                                    deck=args.deck, **given(k=args.k))
    except FigureError as e:
        raise UsageError(str(e)) from None
    for name in res.png:
        print(f"{name}: {res.png[name]}  {res.html.get(name, '')}")
    if res.deck is not None:
        print(f"deck: {res.deck} ({len(res.slides)} slides, {res.deck.stat().st_size / 1e6:.1f} MB; "
              f"PNGs in {res.deck.parent / 'deck'})")
        for step, why in res.missing.items():
            print(f"  no slide for {step}: {why}")
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
        world = m.info.get("world_size", 1)
        batch = m.train_config.get("batch_size")
        together = (f" ({world} processes, {m.info.get('dist_backend', '?')}; global batch {batch}, "
                    f"{batch / world:g} per process)" if isinstance(world, int) and world > 1 and batch else "")
        print(f"trained {len(m.history)} epochs in {m.info.get('train_seconds', '?')} s on "
              f"{m.info.get('runtime', '?')}{together}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for name in list_models():
        print(f"{name:15s} {model_spec(name).description}")
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    from ..atlas import write_unit_atlas
    from ..lecture import default_feature_layer

    with process_group("auto", _backend(args)):
        ckpt = load_checkpoint(args.checkpoint)
        layer = args.layer or default_feature_layer(ckpt)
        try:
            channels = [int(c) for c in args.channels.split(",") if c.strip()] if args.channels else None
            check_channels(ckpt.model, layer, channels or [])
        except ValueError as e:
            raise UsageError(f"--layer/--channels: {e}") from None
        if args.k is not None and args.k < 1:
            raise UsageError(f"-k must be at least 1 (got {args.k})")
        if args.steps is not None and args.steps < 0:
            raise UsageError(f"--steps must be 0 or more (got {args.steps})")
        choice = _data_for(ckpt, args.data)
        res = write_unit_atlas(ckpt, choice.path, args.out, layer, channels, **given(k=args.k, steps=args.steps),
                               progress=True, distributed=True)
        if is_main():
            print(f"{len(res.png)} unit{'' if len(res.png) == 1 else 's'} of {layer}: {res.html}")
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    """Fill the feature cache of the splits asked for (default: train and the held-out split)."""
    from ..inspect.features import cached_features, feature_cache_path

    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {args.batch_size})")
    with process_group(args.device, _backend(args)):
        rt = _runtime(args)
        ckpt = load_checkpoint(args.checkpoint, runtime=rt)
        choice = _data_for(ckpt, args.data)
        main = is_main()
        for split in dict.fromkeys(args.split or ["train", "held-out"]):
            with leader_first():
                if split == "held-out":  # what the dashboard shows: test when the data has it, else val
                    split, ds = held_out_data(ckpt.meta, choice.path, args.cache_dir, progress=main)
                else:
                    ds = checkpoint_data(ckpt.meta, choice.path, split, args.cache_dir, progress=main)
            fs = cached_features(ckpt, ds, split, cache_dir=args.cache_dir, progress=main, runtime=rt,
                                 distributed=True, **given(batch_size=args.batch_size))
            if main:
                path = feature_cache_path(ckpt, ds, split, args.cache_dir)
                print(f"{split}: {len(fs):,} images, {fs.features.shape[1]:,} features each: {path} "
                      f"(logits, labels and ids in {path.with_suffix('.npz').name})")
    return 0


def cmd_attribution_check(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..atomic import FileGroup
    from ..inspect.attribution import METHODS
    from ..inspect.trust import attribution_check, format_check

    ckpt = load_checkpoint(args.checkpoint)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UsageError(f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    if args.n < 1:
        raise UsageError(f"--n must be at least 1 (got {args.n})")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1 (got {args.steps})")
    choice = _data_for(ckpt, args.data)
    split, ds = held_out_data(ckpt.meta, choice.path, progress=True)
    if not len(ds):
        raise UsageError(f"no {split} images in {choice.path}")
    with tqdm(total=1, desc="attribution check", unit="map") as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        check = attribution_check(ckpt, ds, split, args.n, methods, seed=args.seed, progress=progress,
                                  faithfulness=args.only != "sanity", sanity=args.only != "faithfulness",
                                  **given(steps=args.steps, ig_steps=args.ig_steps))
    print(format_check(check))
    if args.json:
        with FileGroup() as group:
            group.stage(args.json).write_text(json.dumps(check.to_dict(), indent=1) + "\n")
            group.commit()
        print(f"saved {args.json}")
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    from ..gallery_make import MAX_GALLERY_BYTES, make_gallery

    ckpt = load_checkpoint(args.checkpoint)
    gm = make_gallery(ckpt.meta, args.data, args.out, made_for=ckpt.name, n_train=args.train,
                      n_heldout=args.heldout, codec=args.codec or "auto", cache_dir=args.cache_dir, progress=True,
                      max_bytes=MAX_GALLERY_BYTES if args.max_mb is None else int(args.max_mb * 1e6),
                      **given(attribution=args.attribution))
    n = len(gm.train) + len(gm.heldout)
    for t in gm.trials:
        psnr = "lossless" if t.psnr_db is None else f"PSNR {t.psnr_db:.1f} dB"
        print(f"{t.codec:14s} {t.bytes_for(n) / 1e6:6.2f} MB for {n:,} (measured on {t.images})  "
              f"max error {t.max_abs_error:3d}  mean {t.mean_abs_error:.3f}  {psnr}")
    zip_path, json_path = gallery_paths(args.out)
    print(f"chose {gm.codec}: {zip_path.stat().st_size / 1e6:.2f} MB, max pixel error {gm.max_abs_error}, "
          f"mean {gm.mean_abs_error:.3f} (0-255, all {n:,} images)")
    print(f"{gm.describe()}; saved {zip_path} and {json_path}")
    return 0


class _ByteBar:
    """A tqdm bar of bytes as a ``(done, total)`` callback; ``total`` 0 shows no end."""

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(desc=self.desc, unit="B", unit_scale=True)
        self.bar.total = total or None
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_download(args: argparse.Namespace) -> int:
    bar = _ByteBar(f"downloading {args.name}")
    try:
        home = download_dataset(args.name, root=Path(args.root).expanduser() if args.root else None,
                                progress=bar, force=args.force)
    finally:
        bar.close()
    print(f"{args.name} is in {home}; use --data {home}")
    return 0

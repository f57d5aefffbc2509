"""``train_checkpoint``: from a dataset on disk to a saved, self-describing checkpoint.

Every choice is defaulted and checked first (:func:`plan_training`), and the output is checked
writable, before any image is decoded or any step taken.

Under ``torchrun`` (an initialised process group, see :mod:`cnnviz.distributed`) every rank
runs it: each machine's first rank decodes the data into the cache before the others read it,
the ranks train and score together, and rank 0 alone checks the output, shows progress and
saves the checkpoint."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .. import distributed
from ..checkpoint_meta import CheckpointError, build_architecture, check_architecture
from ..checkpoints import Checkpoint, CheckpointMeta, load_checkpoint, prepare_output, save_checkpoint, untuple
from ..data import RESIZE_MODES, DatasetError, ImageDataset, Preprocess, load_dataset, make_split, profile
from ..evaluate import evaluate
from ..inputs import Normalization
from ..models import model_spec
from ..runtime import Runtime, resolve_runtime
from .config import COUNT, FRACTION, POSITIVE, ConfigError, TrainConfig, require
from .loop import check_freeze, check_world, fit
from .resume import clear_state, load_state, state_paths

DEFAULT_DATASET = "cifar10"


@dataclass(frozen=True)
class TrainPart:
    """A run stopped after ``epoch`` (``steps`` of ``total_steps`` taken) to be continued:
    its state is saved at ``state``; the same call with ``resume=True`` goes on from there."""

    state: Path
    epoch: int
    steps: int
    total_steps: int
    seconds: float


@dataclass(frozen=True)
class TrainPlan:
    """A run's choices, defaults filled in from the dataset profile and the model's recipe."""

    dataset: str
    arch: str
    arch_kwargs: dict[str, Any]
    preprocess: Preprocess
    val_fraction: float
    config: TrainConfig
    runtime: Runtime


def plan_training(dataset: str = DEFAULT_DATASET, model: str | None = None,
                  model_kwargs: Mapping[str, Any] | None = None, preprocess: Preprocess | None = None,
                  size: int | None = None, resize: str | None = None, val_fraction: float | None = None,
                  overrides: Mapping[str, Any] | None = None) -> TrainPlan:
    """Fill in and check every choice of a run without reading data. Unset choices come from
    the dataset's profile (model, preprocessing, validation share) and the model's recipe
    (``model_spec(arch).train_defaults``, over :class:`TrainConfig`'s own defaults); ``size``
    and ``resize`` change the preprocessing's. Raises :class:`ConfigError` for a value out of
    range, :class:`~cnnviz.checkpoint_meta.CheckpointError` for model arguments that do not
    build, :class:`~cnnviz.models.UnknownModelError` for an unknown model."""
    prof = profile(dataset)
    arch = model or prof.default_model
    spec = model_spec(arch)
    pre = preprocess or prof.preprocess
    if size is not None:
        require("size", size, COUNT)
        pre = replace(pre, size=size)
    if resize is not None:
        require("resize", resize, (lambda v: v in RESIZE_MODES, f"one of {', '.join(RESIZE_MODES)}"))
        pre = replace(pre, mode=resize)
    vf = prof.val_fraction if val_fraction is None else val_fraction
    require("val_fraction", vf, FRACTION)
    cfg = TrainConfig.from_dict(spec.train_defaults).with_overrides(**(overrides or {}))
    kwargs = untuple(dict(model_kwargs or {}))
    try:
        shape = check_architecture(arch, 2, pre.size, kwargs)  # on the meta device: nothing allocated
    except CheckpointError as e:
        raise CheckpointError(f"{e}; check the model arguments (--model-arg) and the input size (--size)") from None
    check_freeze(shape, cfg)
    check_world(cfg)
    try:
        rt = resolve_runtime(cfg.device, cfg.precision, cfg.channels_last)
    except RuntimeError as e:
        raise ConfigError("device", f"cannot be used here: {str(e).splitlines()[0]}") from None
    return TrainPlan(dataset, arch, kwargs, pre, vf, cfg, rt)


def train_checkpoint(
    data: str | Path,
    out: str | Path,
    dataset: str = DEFAULT_DATASET,
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    preprocess: Preprocess | None = None,
    val_fraction: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    evaluate_test: bool = True,
    progress: bool = True,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    size: int | None = None,
    resize: str | None = None,
    resume: bool = False,
    stop_after_minutes: float | None = None,
) -> Checkpoint | TrainPart | None:
    """Load data, split it, train, evaluate and save a self-describing checkpoint at ``out``.

    The choices are checked first (:func:`plan_training`) and ``out`` must be writable and,
    unless ``overwrite``, free. The training data must hold labelled images of at least two
    classes. The model is selected on the validation split only; the test split (when present
    beside the training data) is scored once at the end and recorded in the metrics. Returns
    the checkpoint as loaded on the training runtime.

    The run's state is saved beside ``out`` after every epoch (``<out>.resume.*``) and removed
    once the checkpoint is saved. A state left by an interrupted run is refused unless
    ``resume`` (go on from it: the same steps as an unbroken run) or ``overwrite`` (start
    again). ``stop_after_minutes`` stops at the first epoch's end past that many minutes and
    returns a :class:`TrainPart` instead of a checkpoint: a long run done in parts.

    Under ``torchrun`` every rank calls it with the same arguments; rank 0 saves and returns
    the checkpoint, the other ranks return None once it is saved. ``info`` records the number
    of processes (``world_size``).
    """
    plan = plan_training(dataset, model, model_kwargs, preprocess, size, resize, val_fraction, overrides)
    if stop_after_minutes is not None:
        require("stop_after_minutes", stop_after_minutes, POSITIVE)
    main = distributed.is_main()
    state_file = state_paths(out)[1]
    if main:
        prepare_output(out, overwrite)
        if state_file.exists() and not resume:
            if not overwrite:
                raise CheckpointError(f"{state_file} holds the state of an unfinished run for this output; "
                                      "continue it (resume=True, --resume on the command line) or start again "
                                      "(overwrite=True, --force)")
            clear_state(out)
    progress = progress and main
    t0 = time.perf_counter()
    with distributed.leader_first():
        full = load_dataset(data, "train", plan.preprocess, cache_dir=cache_dir, progress=progress)
    full.require_labels(2, "training")
    split = make_split(full, plan.val_fraction, plan.config.data_seed)
    train_ds, val_ds = split.apply(full)
    norm = Normalization.fit(train_ds.images)
    torch.manual_seed(plan.config.seed)  # the seed decides the initial weights too
    net = build_architecture(plan.arch, len(full.classes), plan.preprocess.size, plan.arch_kwargs)
    identity = _identity(plan, full)
    saved = load_state(out, identity) if resume else None
    result = fit(net, train_ds, val_ds if len(val_ds) else None, plan.config, norm, progress=progress,
                 state_at=out, resume=saved, identity=identity, stop_after_minutes=stop_after_minutes)
    if not result.finished:
        distributed.barrier()
        return TrainPart(state_file, len(result.history), result.steps, result.total_steps, result.seconds)
    test = _test_split(data, full, plan.preprocess, cache_dir, progress) if evaluate_test else None
    net.to(plan.runtime.device)  # fit hands it back where it was built; score it where it trained
    metrics = _metrics(net, full.classes, {"val": val_ds, "test": test}, norm, plan)
    meta = CheckpointMeta(
        arch=plan.arch, classes=full.classes, preprocess=plan.preprocess, normalization=norm,
        arch_kwargs=plan.arch_kwargs, dataset=plan.dataset, tta=plan.config.tta, split=split,
        train_config=plan.config.to_dict(), history=[asdict(r) for r in result.history], metrics=metrics,
        info={"train_seconds": result.seconds, "total_seconds": round(time.perf_counter() - t0, 2),
              "runtime": result.runtime, "best_epoch": result.best_epoch,
              "train_images": len(train_ds), "val_images": len(val_ds), "world_size": result.world_size},
    )
    if result.world_size > 1:
        meta.info["dist_backend"] = distributed.backend()
    done = None
    if main:
        done = load_checkpoint(save_checkpoint(out, net, meta, result.snapshots), runtime=plan.runtime)
        clear_state(out)
    distributed.barrier()
    return done


#: Options that may change between the parts of one run: where and how fast it runs.
_RUNTIME_OPTIONS = ("device", "precision", "channels_last", "threads")


def _identity(plan: TrainPlan, full: ImageDataset) -> dict[str, Any]:
    """What a saved state must match to be continued: the model, recipe, preprocessing and data."""
    recipe = {k: v for k, v in plan.config.to_dict().items() if k not in _RUNTIME_OPTIONS}
    identity = {"model": plan.arch, "model_arguments": plan.arch_kwargs, "recipe": recipe,
                "preprocessing": asdict(plan.preprocess) | {"val_fraction": plan.val_fraction},
                "dataset": full.fingerprint}
    return json.loads(json.dumps(identity))  # as it reads back from the saved JSON (tuples as lists)


def _test_split(data: str | Path, full: ImageDataset, pre: Preprocess, cache_dir: str | Path | None,
                progress: bool) -> ImageDataset | None:
    """The labelled test split beside the training data, in its class order; None if there is none."""
    try:
        with distributed.leader_first():
            test = load_dataset(data, "test", pre, cache_dir=cache_dir, progress=progress)
    except DatasetError:
        return None
    if not test.labelled or test.fingerprint == full.fingerprint:
        return None
    return test.relabel(full.classes)


def _metrics(net: nn.Module, classes: list[str], splits: Mapping[str, ImageDataset | None], norm: Normalization,
             plan: TrainPlan) -> dict[str, Any]:
    """Evaluation reports (as dicts) of the splits that have images."""
    return {name: evaluate(net, ds.images, ds.labels, classes, norm, plan.runtime, plan.config.tta,
                           split=name, distributed=True).to_dict()
            for name, ds in splits.items() if ds is not None and len(ds)}

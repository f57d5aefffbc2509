"""``fit``: the training loop, in steps: set up, then per epoch its order, its steps, its
validation and what is kept of it; a run's state travels between them in one :class:`_Run`.

Under ``torchrun`` (an initialised process group of several processes) every rank draws the
same epoch order and takes its contiguous part of each global batch of ``batch_size`` images
(:func:`cnnviz.distributed.split_batch`); ``DistributedDataParallel`` averages the gradients,
and each rank's loss is weighed by its share of the batch, so a step follows the gradient of
the global batch's mean loss. Augmentation draws differ between ranks
(:func:`cnnviz.distributed.rank_seed`); rank 0 decides the time budget's plan and prints."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..data import ImageDataset
from ..evaluate import predict_logits
from ..inputs import Normalization, mix_batch, random_affine, random_colour, random_translate, to_input
from ..runtime import Runtime, resolve_runtime, set_threads, tune_cpu_process
from .config import ConfigError, EpochRecord, TrainConfig, TrainResult
from .optim import Lookahead, class_weights, cpu_state, lr_factor, param_groups, snapshot_prefix, steps_within
from .parallel import data_parallel, global_batchnorm
from .resume import SavedState, save_state


@dataclass
class _Run:
    """One fit's state, shared by its steps."""

    model: nn.Module
    net: nn.Module  # what a step calls: the model, or its DistributedDataParallel wrapper
    cfg: TrainConfig
    norm: Normalization
    rt: Runtime
    images: torch.Tensor  # (N, H, W, 3) uint8
    labels: torch.Tensor  # (N,) int64
    rng: np.random.Generator
    gen: torch.Generator
    loss_fn: nn.Module
    opt: torch.optim.Optimizer
    look: Lookahead | None
    flip_base: torch.Tensor  # (N,) bool: the flips of odd epochs when flip="alternate"
    sample_p: np.ndarray | None  # per-image sampling probabilities (class_balance="sampler")
    steps_per_epoch: int
    total_steps: int
    planned_steps: int
    bar: Any = None
    step: int = 0
    t_start: float = 0.0
    history: list[EpochRecord] = field(default_factory=list)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    world: int = 1  # processes taking part (torchrun), each with a share of every batch

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def main(self) -> bool:
        """True on the process that prints and keeps snapshots (rank 0)."""
        return distributed.is_main()


def fit(
    model: nn.Module,
    train: ImageDataset,
    val: ImageDataset | None,
    config: TrainConfig,
    norm: Normalization,
    progress: bool = True,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    state_at: str | Path | None = None,
    resume: SavedState | None = None,
    identity: dict[str, Any] | None = None,
    stop_after_minutes: float | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train`` (uint8 images), validating on ``val`` every epoch.

    Returns the history, and CPU copies of the weights at ``config.snapshot_epochs`` (epoch 0:
    as initialised, after any data-dependent ``prepare``). The
    model ends on the device it started on, in eval mode.

    In parts: with ``state_at`` (a checkpoint path) the run's whole state is saved beside it
    after every epoch (:mod:`cnnviz.train.resume`, tagged with ``identity``); ``resume``, a
    state loaded from there, continues a run from the end of its epoch with the same weights,
    optimiser, schedule and random draws, so the steps taken are those of an unbroken run.
    ``stop_after_minutes`` ends this part at the first epoch's end past that many minutes;
    the result then has ``finished=False``.

    Inside a process group of several processes (``torchrun``) every rank calls it with the
    same data and config and trains its share of every batch; all ranks end with the same
    weights and history (``on_epoch`` is called on each); progress shows on rank 0 only, and
    only rank 0 keeps snapshots and saves the state (the others return none).
    """
    if len(train) == 0:
        raise ValueError("the training set is empty")
    home = next(model.parameters()).device
    run = _setup(model, train, config, norm)
    epoch = 0
    if resume is not None:
        _restore(run, resume)
        epoch = resume.epoch
    if progress and run.main:
        from tqdm.auto import tqdm

        where = run.rt.describe() + (f", {run.world} processes" if run.world > 1 else "")
        run.bar = tqdm(total=run.total_steps, initial=run.step, desc=f"training on {where}", unit="step")
    part_start = time.perf_counter()
    run.t_start = part_start - (resume.elapsed if resume is not None else 0.0)
    if 0 in config.snapshot_epochs and run.main and resume is None:  # the weights as initialised
        run.snapshots[0] = cpu_state(model, snapshot_prefix(model, config.snapshot_scope))
    model.train()
    run.net.train()
    finished = True
    try:
        while run.step < run.total_steps:
            epoch += 1
            _keep(run, _epoch(run, epoch, val), on_epoch)
            if state_at is not None and run.main:
                save_state(state_at, _capture(run, epoch, identity or {}))
            if (stop_after_minutes is not None and run.step < run.total_steps
                    and time.perf_counter() - part_start >= stop_after_minutes * 60):
                finished = False
                break
    finally:
        if run.bar is not None:
            run.bar.close()
    if finished and run.best is not None and run.best[1] != run.history[-1].epoch:
        model.load_state_dict(run.best[2])
    model.to(home, memory_format=torch.contiguous_format).eval()
    return TrainResult(run.history, run.snapshots, run.rt.describe(), round(time.perf_counter() - run.t_start, 2),
                       best_epoch=run.best[1] if run.best else None, world_size=run.world, finished=finished,
                       total_steps=run.total_steps, steps=run.step)


def _capture(run: _Run, epoch: int, identity: dict[str, Any]) -> SavedState:
    """The run's state at the end of ``epoch``, as CPU tensors and JSON values."""
    opt = run.opt.state_dict()
    tensors: dict[str, dict[str, torch.Tensor]] = {
        "model": cpu_state(run.model),
        "opt": {f"{i}.{name}": t for i, st in opt["state"].items() for name, t in st.items()
                if isinstance(t, torch.Tensor)},
        "gen": {"state": run.gen.get_state()},
    }
    if run.look is not None:
        tensors["look"] = run.look.ema
    if run.best is not None:
        tensors["best"] = run.best[2]
    for e, snap in run.snapshots.items():
        tensors[f"snap{e}"] = snap
    return SavedState(epoch, run.step, run.total_steps, run.planned_steps, time.perf_counter() - run.t_start,
                      list(run.history), run.rng.bit_generator.state, opt["param_groups"],
                      run.best[:2] if run.best else None, identity, tensors)


def _restore(run: _Run, state: SavedState) -> None:
    """Put ``state`` (from :func:`_capture`, saved and loaded again) into a freshly set-up run."""
    t = state.tensors
    run.model.load_state_dict(t["model"])
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in t.get("opt", {}).items():
        i, _, name = key.partition(".")
        per_param.setdefault(int(i), {})[name] = v
    run.opt.load_state_dict({"state": per_param, "param_groups": state.optimizer_groups})
    if run.look is not None and "look" in t:
        for k, e in run.look.ema.items():
            e.copy_(t["look"][k])
    if state.best is not None:
        run.best = (float(state.best[0]), int(state.best[1]), t["best"])
    run.snapshots = {int(g[4:]): v for g, v in t.items() if g.startswith("snap")}
    run.gen.set_state(t["gen"]["state"])
    run.rng.bit_generator.state = state.rng
    run.step, run.total_steps, run.planned_steps = state.step, state.total_steps, state.planned_steps
    run.history = list(state.history)


def check_freeze(model: nn.Module, cfg: TrainConfig) -> None:
    """Refuse ``cfg.freeze_after`` naming parameters ``model`` does not have."""
    names = dict(model.named_parameters())
    unknown = sorted(set(cfg.freeze_after) - set(names))
    if unknown:
        some = ", ".join(list(names)[:6]) + (", ..." if len(names) > 6 else "")
        raise ConfigError("freeze_after", f"names {', '.join(unknown)}, which {type(model).__name__} does not "
                                          f"have (its parameters: {some}); set it to {{}} or to those names")


def check_world(cfg: TrainConfig, n: int | None = None) -> None:
    """Refuse a global batch (or ``n`` training images) too small to give every process an image."""
    world = distributed.world_size()
    if world > 1 and cfg.batch_size < world:
        raise ConfigError("batch_size", f"must be at least the number of processes ({world}), each of which "
                                        f"trains on a share of every batch (got {cfg.batch_size})")
    if world > 1 and n is not None and n < world:
        raise ValueError(f"the training set has {n} images, fewer than the {world} processes that share it")


def _setup(model: nn.Module, train: ImageDataset, cfg: TrainConfig, norm: Normalization) -> _Run:
    """Seed, choose the runtime, move the model there, prepare it, build loss and optimiser;
    in a process group, wrap the model for data-parallel training."""
    check_freeze(model, cfg)
    check_world(cfg, len(train))
    world = distributed.world_size()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)  # the same on every rank: they agree on the order
    gen = torch.Generator().manual_seed(distributed.rank_seed(cfg.seed))
    if cfg.threads is not None:
        set_threads(cfg.threads)
    rt = resolve_runtime(cfg.device, cfg.precision, cfg.channels_last)
    if rt.device.type == "cpu":
        tune_cpu_process()
    model.to(rt.device, memory_format=rt.memory_format)

    images = torch.from_numpy(np.ascontiguousarray(train.images))
    labels_np = train.labels.astype(np.int64)
    n, k = len(train), len(train.classes)
    steps_per_epoch = max(1, n // cfg.batch_size) if n >= cfg.batch_size else 1
    total_steps = max(1, int(math.ceil(cfg.epochs * steps_per_epoch)))
    prepare = getattr(model, "prepare", None)
    if callable(prepare):
        sample = rng.permutation(n)[:5000]
        prepare(to_input(images[np.sort(sample)], norm, rt.device))
    net = model
    if world > 1:  # from here on every rank holds rank 0's weights and buffers
        net = data_parallel(global_batchnorm(model) if cfg.sync_bn else model, rt.device,
                                        broadcast_buffers=not cfg.sync_bn)

    weights = None
    if cfg.class_balance == "loss":
        weights = torch.tensor(class_weights(labels_np, k), dtype=torch.float32, device=rt.device)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)
    opt = torch.optim.SGD(param_groups(model, cfg), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=cfg.nesterov and cfg.momentum > 0)
    look = Lookahead(model) if 0 < cfg.lookahead_every <= total_steps else None
    flip_base = torch.from_numpy(rng.random(n) < 0.5)
    sample_p = None
    if cfg.class_balance == "sampler":
        w = class_weights(labels_np, k)[labels_np]
        sample_p = w / w.sum()
    if world > 1:
        torch.manual_seed(distributed.rank_seed(cfg.seed))  # e.g. dropout: its own draws on each rank
    return _Run(model, net, cfg, norm, rt, images, torch.from_numpy(labels_np), rng, gen, loss_fn, opt, look,
                flip_base, sample_p, steps_per_epoch, total_steps, planned_steps=total_steps, world=world)


def _epoch_order(run: _Run, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(order, flips)``: the image indices of this epoch and which images are mirrored."""
    n, flip = run.n, run.cfg.flip
    order = run.rng.choice(n, n, p=run.sample_p) if run.sample_p is not None else run.rng.permutation(n)
    if flip == "alternate":
        flips = run.flip_base ^ bool(epoch % 2 == 0)
    elif flip == "random":
        flips = torch.from_numpy(run.rng.random(n) < 0.5)
    else:
        flips = torch.zeros(n, dtype=torch.bool)
    return torch.from_numpy(order), flips


def _epoch(run: _Run, epoch: int, val: ImageDataset | None) -> EpochRecord:
    """Train one epoch (or what is left of the planned steps), then validate."""
    cfg = run.cfg
    frozen = False
    for name, last in cfg.freeze_after.items():
        if epoch > last:
            p = run.model.get_parameter(name)
            frozen |= p.requires_grad
            p.requires_grad_(False)
    if frozen and run.world > 1:  # DistributedDataParallel reduces the parameters that train when it is made
        run.net = data_parallel(run.net.module, run.rt.device, broadcast_buffers=not cfg.sync_bn)
    t0 = time.perf_counter()
    order, flips = _epoch_order(run, epoch)
    loss_sum, correct, seen = 0.0, 0, 0
    for b in range(run.steps_per_epoch):
        if run.step >= run.total_steps:
            break
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        mine = distributed.split_batch(idx) if run.world > 1 else idx
        loss, right = _step(run, mine, flips, last_of_epoch=b == run.steps_per_epoch - 1,
                            share=_share(run, mine, idx))
        loss_sum += loss * len(idx)
        correct += right
        seen += len(mine)
        if run.bar is not None:
            run.bar.update(1)
            run.bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    if run.look is not None and run.step >= run.total_steps and run.step % cfg.lookahead_every:
        run.look.update(run.model, cfg.lookahead_decay)  # end on the averaged weights
    if run.world > 1:  # the epoch's sums over the ranks; every rank validates rank 0's statistics
        loss_sum, correct, seen = distributed.sum_values([loss_sum, correct, seen])
        correct, seen = int(correct), int(seen)
        distributed.sync_buffers(run.model)
    train_s = time.perf_counter() - t0
    val_loss, val_acc = _validate(run, val)
    return EpochRecord(epoch, loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, val_acc,
                       float(run.opt.param_groups[0]["lr"]), round(time.perf_counter() - t0, 3),
                       round(seen / max(train_s, 1e-9), 1))


def _share(run: _Run, mine: torch.Tensor, idx: torch.Tensor) -> float:
    """This rank's share of the global batch ``idx``'s loss: its images' part of the batch's
    total loss weight (with ``class_balance="loss"`` each image weighs its class's weight).
    1 in a single process."""
    if run.world == 1:
        return 1.0
    w = run.loss_fn.weight
    if w is None:
        return len(mine) / len(idx)
    w = w.cpu()
    return float(w[run.labels[mine]].sum() / w[run.labels[idx]].sum())


def _step(run: _Run, idx: torch.Tensor, flips: torch.Tensor, last_of_epoch: bool,
          share: float = 1.0) -> tuple[float, int]:
    """One optimiser step on the images ``idx``; returns ``(mean loss, correct predictions)``.

    With several processes ``idx`` is this rank's part of the global batch and ``share`` its
    part of the batch's loss (:func:`_share`): the loss is scaled by ``share * world`` before
    the gradients are averaged over the ranks, which gives the gradient of the global batch's
    mean loss, and the loss returned is this rank's part of that mean."""
    cfg, rt = run.cfg, run.rt
    x = to_input(run.images[idx], run.norm, rt.device)
    y = run.labels[idx].to(rt.device, non_blocking=True)
    fl = flips[idx].to(rt.device)
    x = torch.where(fl.view(-1, 1, 1, 1), x.flip(-1), x)
    x = random_colour(x, run.norm, cfg.saturation, cfg.gray_prob, run.gen)
    x = random_affine(x, cfg.scale, cfg.rotate, run.gen)
    x = random_translate(x, cfg.translate, run.gen).contiguous(memory_format=rt.memory_format)
    f = lr_factor(run.step, run.total_steps, cfg)
    for g in run.opt.param_groups:
        g["lr"] = g["base_lr"] * f
    partner, lam = None, 1.0
    if cfg.mix != "none" and torch.rand((), generator=run.gen).item() < cfg.mix_prob:
        x, partner, lam = mix_batch(x, cfg.mix, cfg.mix_alpha, run.gen)
    with rt.autocast():
        out = run.net(x)
        loss = run.loss_fn(out.float(), y)
        if partner is not None:
            loss = lam * loss + (1 - lam) * run.loss_fn(out.float(), y[partner])
    run.opt.zero_grad(set_to_none=True)
    if run.world > 1:
        (loss * (share * run.world)).backward()
        loss = loss.detach() * share
    else:
        loss.backward()
    run.opt.step()
    run.step += 1
    if cfg.max_minutes and (run.step == 4 or last_of_epoch):
        _replan(run)
    if run.look is not None and run.step % cfg.lookahead_every == 0:
        run.look.update(run.model, cfg.lookahead_decay * (run.step / run.total_steps) ** 3)
    return loss.item(), int((out.argmax(1) == y).sum())


def _replan(run: _Run) -> None:
    """Fit the planned number of steps to ``max_minutes`` at the speed measured so far. With
    several processes, rank 0's plan is every rank's (they must take the same steps)."""
    total = steps_within(run.cfg.max_minutes * 60, time.perf_counter() - run.t_start, run.step,
                         run.planned_steps, run.steps_per_epoch)
    run.total_steps = int(distributed.broadcast_value(total)) if run.world > 1 else total
    if run.bar is not None:
        run.bar.total = run.total_steps
        run.bar.refresh()


def _validate(run: _Run, val: ImageDataset | None) -> tuple[float | None, float | None]:
    """``(loss, accuracy)`` on ``val``, or ``(None, None)`` without validation images."""
    if val is None or not len(val):
        return None, None
    logits = predict_logits(run.model, val.images, run.norm, run.rt, batch_size=1000, distributed=run.world > 1)
    loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(val.labels)))
    return loss, float((logits.argmax(1) == val.labels).mean())


def _keep(run: _Run, rec: EpochRecord, on_epoch: Callable[[EpochRecord], None] | None) -> None:
    """Record the epoch: history, progress line, callback, snapshot, best weights so far."""
    run.history.append(rec)
    if run.bar is not None:
        run.bar.write(f"epoch {rec.epoch}: loss {rec.train_loss:.4f} train acc {rec.train_acc:.4f}"
                      + (f" val acc {rec.val_acc:.4f}" if rec.val_acc is not None else "")
                      + f" ({rec.images_per_s:.0f} img/s)")
    if on_epoch is not None:
        on_epoch(rec)
    if rec.epoch in run.cfg.snapshot_epochs and run.main:
        run.snapshots[rec.epoch] = cpu_state(run.model, snapshot_prefix(run.model, run.cfg.snapshot_scope))
    if run.cfg.keep_best and rec.val_acc is not None and (run.best is None or rec.val_acc > run.best[0]):
        run.best = (rec.val_acc, rec.epoch, cpu_state(run.model))

"""Training: ``fit(model, train, val, config) -> TrainResult`` on CUDA or a fast CPU path."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch
from torch import nn

from .checkpoints import Checkpoint, CheckpointMeta, load_checkpoint, save_checkpoint
from .data import DatasetError, ImageDataset, Preprocess, load_dataset, make_split, profile
from .evaluate import evaluate, predict_logits
from .models import get_model, model_spec
from .inputs import TTA, Normalization, random_affine, random_translate, to_input
from .runtime import Precision, resolve_runtime, set_threads, tune_cpu_process


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Defaults suit a generic CNN; each registered
    model supplies its own recipe (``model_spec(name).train_defaults``).

    The learning rate follows a piecewise-linear one-cycle: ``lr * lr_start`` rising to ``lr``
    over ``warmup_fraction`` of the steps, then falling to ``lr * lr_end``. BatchNorm parameters
    use ``lr * norm_lr_scale`` and ``weight_decay / norm_lr_scale``. ``lookahead_every > 0``
    keeps an exponential moving average of the weights that the model is pulled back to every
    that many steps, with a decay ramping as ``lookahead_decay * progress**3``.

    ``max_minutes`` caps the run's wall time (validation included): the number of steps is
    re-estimated from the measured speed as training goes, and the schedule follows it.
    """

    epochs: float = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    norm_lr_scale: float = 1.0
    warmup_fraction: float = 0.2
    lr_start: float = 0.1
    lr_end: float = 0.0
    lookahead_every: int = 0
    lookahead_decay: float = 0.0
    flip: Literal["none", "random", "alternate"] = "random"
    translate: int = 0
    scale: float = 0.0
    rotate: float = 0.0
    tta: TTA = "none"
    freeze_after: Mapping[str, int] = field(default_factory=dict)
    class_balance: Literal["none", "loss", "sampler"] = "none"
    keep_best: bool = False
    device: str = "auto"
    precision: Precision = "auto"
    channels_last: bool | None = None
    threads: int | None = None
    seed: int = 0
    snapshot_epochs: tuple[int, ...] = ()
    snapshot_scope: Literal["all", "first_conv"] = "all"
    max_minutes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["freeze_after"] = dict(self.freeze_after)
        d["snapshot_epochs"] = list(self.snapshot_epochs)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        d = dict(d)
        if "snapshot_epochs" in d:
            d["snapshot_epochs"] = tuple(int(e) for e in d["snapshot_epochs"])
        return cls(**d)

    def with_overrides(self, **kw: Any) -> "TrainConfig":
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


@dataclass
class EpochRecord:
    """One row of training history."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    lr: float
    seconds: float
    images_per_s: float


@dataclass
class TrainResult:
    """What ``fit`` returns: the history, weight snapshots by epoch, and the runtime used."""

    history: list[EpochRecord]
    snapshots: dict[int, dict[str, torch.Tensor]]
    runtime: str
    seconds: float
    best_epoch: int | None = None


def _lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    warm = max(1, int(total * cfg.warmup_fraction))
    if step < warm:
        f = step / warm
        return cfg.lr_start * (1 - f) + f
    f = (step - warm) / max(1, total - warm)
    return (1 - f) + cfg.lr_end * f


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    norm_ids = {id(p) for m in model.modules()
                if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm))
                for p in m.parameters(recurse=False)}
    norm, other = [], []
    for p in model.parameters():
        if p.requires_grad:
            (norm if id(p) in norm_ids else other).append(p)
    groups = [dict(params=other, lr=cfg.lr, weight_decay=cfg.weight_decay, base_lr=cfg.lr)]
    if norm:
        lr_n = cfg.lr * cfg.norm_lr_scale
        groups.append(dict(params=norm, lr=lr_n, weight_decay=cfg.weight_decay / cfg.norm_lr_scale,
                           base_lr=lr_n))
    return groups


def _class_weights(labels: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    w = np.where(counts > 0, len(labels) / (k * np.maximum(counts, 1)), 0.0)
    return w


class _Lookahead:
    """EMA of the float tensors of a state dict, copied back into the model when updated."""

    def __init__(self, model: nn.Module):
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        state = model.state_dict()
        for k, e in self.ema.items():
            e.lerp_(state[k], 1 - decay)
            state[k].copy_(e)


def fit(
    model: nn.Module,
    train: ImageDataset,
    val: ImageDataset | None,
    config: TrainConfig,
    norm: Normalization,
    progress: bool = True,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train`` (uint8 images), validating on ``val`` every epoch.

    Returns the history, and CPU copies of the weights at ``config.snapshot_epochs``. The
    model ends on the device it started on, in eval mode.
    """
    cfg = config
    if len(train) == 0:
        raise ValueError("the training set is empty")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.threads is not None:
        set_threads(cfg.threads)
    rt = resolve_runtime(cfg.device, cfg.precision, cfg.channels_last)
    if rt.device.type == "cpu":
        tune_cpu_process()
    home = next(model.parameters()).device
    model.to(rt.device, memory_format=rt.memory_format)

    images = torch.from_numpy(np.ascontiguousarray(train.images))
    labels_np = train.labels.astype(np.int64)
    labels = torch.from_numpy(labels_np)
    n, k = len(train), len(train.classes)
    steps_per_epoch = max(1, n // cfg.batch_size) if n >= cfg.batch_size else 1
    total_steps = max(1, int(math.ceil(cfg.epochs * steps_per_epoch)))

    prepare = getattr(model, "prepare", None)
    if callable(prepare):
        sample = rng.permutation(n)[:5000]
        prepare(to_input(images[np.sort(sample)], norm, rt.device))

    weights = None
    if cfg.class_balance == "loss":
        weights = torch.tensor(_class_weights(labels_np, k), dtype=torch.float32, device=rt.device)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing)
    groups = _param_groups(model, cfg)
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    look = _Lookahead(model) if 0 < cfg.lookahead_every <= total_steps else None
    flip_base = torch.from_numpy(rng.random(n) < 0.5)
    sample_p = None
    if cfg.class_balance == "sampler":
        w = _class_weights(labels_np, k)[labels_np]
        sample_p = w / w.sum()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc=f"training on {rt.describe()}", unit="step")
    history: list[EpochRecord] = []
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    step = 0
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    planned_steps = total_steps
    t_start = time.perf_counter()
    model.train()
    try:
        epoch = 0
        while step < total_steps:
            epoch += 1
            for name, last in cfg.freeze_after.items():
                if epoch > last:
                    model.get_parameter(name).requires_grad_(False)
            t0 = time.perf_counter()
            order = (rng.choice(n, n, p=sample_p) if sample_p is not None else rng.permutation(n))
            order = torch.from_numpy(order)
            if cfg.flip == "alternate":
                flips = flip_base ^ bool(epoch % 2 == 0)
            elif cfg.flip == "random":
                flips = torch.from_numpy(rng.random(n) < 0.5)
            else:
                flips = torch.zeros(n, dtype=torch.bool)
            loss_sum, correct, seen = 0.0, 0, 0
            for b in range(steps_per_epoch):
                if step >= total_steps:
                    break
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                x = to_input(images[idx], norm, rt.device)
                y = labels[idx].to(rt.device, non_blocking=True)
                fl = flips[idx].to(rt.device)
                x = torch.where(fl.view(-1, 1, 1, 1), x.flip(-1), x)
                x = random_affine(x, cfg.scale, cfg.rotate, gen)
                x = random_translate(x, cfg.translate, gen).contiguous(memory_format=rt.memory_format)
                f = _lr_factor(step, total_steps, cfg)
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * f
                with rt.autocast():
                    out = model(x)
                    loss = loss_fn(out.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if budget is not None and (step == 4 or b == steps_per_epoch - 1):
                    total_steps = _steps_within(budget, time.perf_counter() - t_start, step,
                                                planned_steps, steps_per_epoch)
                    if bar is not None:
                        bar.total = total_steps
                        bar.refresh()
                if look is not None and step % cfg.lookahead_every == 0:
                    look.update(model, cfg.lookahead_decay * (step / total_steps) ** 3)
                loss_sum += loss.item() * len(idx)
                correct += int((out.argmax(1) == y).sum())
                seen += len(idx)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            if look is not None and step >= total_steps and step % cfg.lookahead_every:
                look.update(model, cfg.lookahead_decay)  # end on the averaged weights
            train_s = time.perf_counter() - t0
            val_loss = val_acc = None
            if val is not None and len(val):
                logits = predict_logits(model, val.images, norm, rt, batch_size=1000)
                lg = torch.from_numpy(logits)
                val_loss = float(nn.functional.cross_entropy(lg, torch.from_numpy(val.labels)))
                val_acc = float((logits.argmax(1) == val.labels).mean())
            rec = EpochRecord(epoch, loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, val_acc,
                              float(opt.param_groups[0]["lr"]), round(time.perf_counter() - t0, 3),
                              round(seen / max(train_s, 1e-9), 1))
            history.append(rec)
            if bar is not None:
                bar.write(f"epoch {epoch}: loss {rec.train_loss:.4f} train acc {rec.train_acc:.4f}"
                          + (f" val acc {val_acc:.4f}" if val_acc is not None else "")
                          + f" ({rec.images_per_s:.0f} img/s)")
            if on_epoch is not None:
                on_epoch(rec)
            if epoch in cfg.snapshot_epochs:
                snapshots[epoch] = _cpu_state(model, _snapshot_prefix(model, cfg.snapshot_scope))
            if cfg.keep_best and val_acc is not None and (best is None or val_acc > best[0]):
                best = (val_acc, epoch, _cpu_state(model))
    finally:
        if bar is not None:
            bar.close()
    if best is not None and best[1] != history[-1].epoch:
        model.load_state_dict(best[2])
    model.to(home, memory_format=torch.contiguous_format).eval()
    return TrainResult(history, snapshots, rt.describe(), round(time.perf_counter() - t_start, 2),
                       best_epoch=best[1] if best else None)


def _steps_within(budget_s: float, elapsed: float, step: int, planned: int, steps_per_epoch: int) -> int:
    """Total steps that fit in ``budget_s`` at the speed measured so far (never fewer than done,
    never more than ``planned``). Validation is costed as a tenth of the training time (one
    inference pass over a small split per epoch)."""
    per_step = elapsed / step
    fit = int((budget_s - elapsed) / (per_step * 1.1))
    return max(step + 1, min(planned, step + fit))


def _snapshot_prefix(model: nn.Module, scope: str) -> str:
    """``""`` (everything) or the state-dict prefix of the first convolution."""
    if scope == "all":
        return ""
    first = getattr(model, "first_conv", None)
    return next((f"{n}." for n, m in model.named_modules() if m is first), "")


def _cpu_state(model: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
            if k.startswith(prefix)}


def train_checkpoint(
    data: str | Path,
    out: str | Path,
    dataset: str = "cifar10",
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    preprocess: Preprocess | None = None,
    val_fraction: float | None = None,
    overrides: Mapping[str, Any] | None = None,
    evaluate_test: bool = True,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> Checkpoint:
    """Load data, split it, train, evaluate and save a self-describing checkpoint at ``out``.

    The model is selected on the validation split only; the test split (when present beside
    the training data) is scored once at the end and recorded in the metrics.
    """
    prof = profile(dataset)
    arch = model or prof.default_model
    pre = preprocess or prof.preprocess
    vf = prof.val_fraction if val_fraction is None else val_fraction
    cfg = TrainConfig.from_dict(model_spec(arch).train_defaults).with_overrides(**(overrides or {}))
    t0 = time.perf_counter()
    full = load_dataset(data, "train", pre, cache_dir=cache_dir, progress=progress)
    split = make_split(full, vf, cfg.seed)
    train_ds, val_ds = split.apply(full)
    norm = Normalization.fit(train_ds.images)
    net = get_model(arch, len(full.classes), pre.size, **dict(model_kwargs or {}))
    result = fit(net, train_ds, val_ds if len(val_ds) else None, cfg, norm, progress=progress)
    metrics: dict[str, Any] = {}
    rt = resolve_runtime(cfg.device, cfg.precision, cfg.channels_last)
    if len(val_ds):
        metrics["val"] = evaluate(net, val_ds.images, val_ds.labels, full.classes, norm, rt,
                                  cfg.tta, split="val").to_dict()
    if evaluate_test:
        try:
            test = load_dataset(data, "test", pre, cache_dir=cache_dir, progress=progress)
        except DatasetError:
            test = None
        if test is not None and test.labelled and test.fingerprint != full.fingerprint:
            test = test.relabel(full.classes)
            metrics["test"] = evaluate(net, test.images, test.labels, full.classes, norm, rt,
                                       cfg.tta, split="test").to_dict()
    meta = CheckpointMeta(
        arch=arch, classes=full.classes, preprocess=pre, normalization=norm,
        arch_kwargs=dict(model_kwargs or {}), dataset=dataset, tta=cfg.tta, split=split,
        train_config=cfg.to_dict(), history=[asdict(r) for r in result.history], metrics=metrics,
        info={"train_seconds": result.seconds, "total_seconds": round(time.perf_counter() - t0, 2),
              "runtime": result.runtime, "best_epoch": result.best_epoch,
              "train_images": len(train_ds), "val_images": len(val_ds)},
    )
    path = save_checkpoint(out, net, meta, result.snapshots)
    return load_checkpoint(path)

"""What one channel of a layer (a *unit*) responds to, and what the model needs it for.

* :func:`unit_examples`: one streaming pass over a dataset records, for every channel of a
  layer at once, each image's peak activation and where it peaks: ``(N, C)`` numbers, never the
  activation maps themselves. The top-k and bottom-k images of a channel, its peak
  distribution and the crop around each peak (the peak unit's theoretical receptive field)
  follow from them. :func:`cached_unit_examples` keeps them on disk, keyed by checkpoint hash,
  dataset fingerprint and layer.
* :func:`knockout`: the model with chosen channels of a layer zeroed in the forward pass (a hook
  on a private view of the module tree, never the shared model's weights), scored against the
  intact model on labelled images: per-class recall and the confusion matrix, before and after.
  :func:`unit_importance` ranks a layer's channels by how much one class needs each.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .. import distributed as dist_
from ..array_cache import load_arrays, save_arrays
from ..checkpoints import Checkpoint
from ..data import ImageDataset, default_cache_dir
from ..evaluate import confusion_matrix, inference_batches, predict_logits
from ..hooks import resolve_layers
from ..inputs import Normalization
from ..runtime import Progress, Runtime, check_runtime, progress_reporter
from .receptive_field import LayerRF, unit_box

__all__ = ["KnockoutResult", "UnitCrop", "UnitExamples", "cached_unit_examples", "check_channels", "compare_knockout",
           "knocked_logits", "knocked_out", "knockout", "unit_crop", "unit_examples", "unit_importance", "unit_patch"]

_FORMAT = "cnnviz-units/1"


class _Stop(Exception):
    """Raised by the capture hook once the layer has run: the rest of the forward is not needed."""


@dataclass(frozen=True, eq=False)
class UnitExamples:
    """Every image's peak activation in every channel of one layer.

    ``peak``: ``(N, C) float32``, the image's maximum activation in the channel;
    ``where``: ``(N, C) int32``, the flat position ``y * w + x`` of that maximum in the layer's
    ``map_size`` ``(h, w)`` map (first position on ties)."""

    layer: str
    peak: np.ndarray
    where: np.ndarray
    map_size: tuple[int, int]

    @property
    def channels(self) -> int:
        return self.peak.shape[1]

    def top(self, channel: int, k: int = 9) -> np.ndarray:
        """The ``k`` images with the highest peak in ``channel``, highest first (ties: lower
        index first)."""
        return np.lexsort((np.arange(len(self.peak)), -self.peak[:, channel].astype(np.float64)))[:k]

    def bottom(self, channel: int, k: int = 9) -> np.ndarray:
        """The ``k`` images whose peak in ``channel`` is lowest, lowest first."""
        return np.lexsort((np.arange(len(self.peak)), self.peak[:, channel].astype(np.float64)))[:k]

    def peak_at(self, image: int, channel: int) -> tuple[int, int]:
        """``(y, x)`` of the image's peak in the channel's map."""
        return divmod(int(self.where[image, channel]), self.map_size[1])

    def purest(self, labels: np.ndarray, k: int = 9) -> tuple[int, int, int]:
        """``(channel, class, count)``: the channel whose top ``k`` images are most often of one
        class (ties: the lower channel, the lower class), that class and how many of the ``k``
        are of it: a unit whose favourite things an audience can name. Labels below 0 (unknown)
        count for no class."""
        best = (0, 0, 0)
        for c in range(self.channels):
            got = np.asarray(labels)[self.top(c, k)]
            got = got[got >= 0]
            if len(got):
                counts = np.bincount(got)
                if counts.max() > best[2]:
                    best = (c, int(counts.argmax()), int(counts.max()))
        return best

    def histogram(self, channel: int, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)`` of the channel's per-image peaks."""
        return np.histogram(self.peak[:, channel], bins=bins)


def _capture_output(view: nn.Module, layer: str, store: dict) -> torch.utils.hooks.RemovableHandle:
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        store["out"] = output
        raise _Stop

    return view.get_submodule(layer).register_forward_hook(hook)


def unit_examples(model: nn.Module, images: np.ndarray, layer: str, norm: Normalization,
                  runtime: Runtime | None = None, batch_size: int = 250, progress: Progress = False,
                  distributed: bool = False) -> UnitExamples:
    """One pass over ``images`` (``(N, H, W, 3) uint8``): each image's peak activation in every
    channel of ``layer`` and its position. The forward stops at the layer; only ``(batch, C,
    h, w)`` activations are held at a time. The model is not changed (a private view runs).
    ``distributed``: every rank of the process group (``torchrun``) calls it with the same
    images and runs its share of the batches; each gets the whole result."""
    if distributed and dist_.active() and len(images):
        lo, hi = dist_.shard_bounds(len(images), batch_size)  # rank 0 always has a batch
        part = unit_examples(model, images[lo:hi], layer, norm, runtime, batch_size,
                             progress if dist_.is_main() else False) if hi > lo else None
        size = dist_.broadcast_object(part.map_size if part is not None else None)
        empty = np.zeros((0, 0), np.float32)
        peak = dist_.gather_rows(part.peak if part is not None else empty)
        where = dist_.gather_rows(part.where if part is not None else empty.astype(np.int32))
        return UnitExamples(layer, peak, where, size)
    resolve_layers(model, layer)
    rt = check_runtime(model, runtime)
    n = len(images)
    peak: np.ndarray | None = None
    where: np.ndarray | None = None
    size = (1, 1)
    with inference_batches(model, images, norm, rt, batch_size, progress, desc=f"units of {layer}") as (view, batches):
        store: dict = {}
        handle = _capture_output(view, layer, store)
        try:
            for s, x in batches:
                with contextlib.suppress(_Stop), rt.autocast():
                    view(x)
                if "out" not in store:
                    raise RuntimeError(f"layer {layer!r} did not run in {type(model).__name__}'s forward pass")
                out = store.pop("out").float()
                if out.ndim == 2:
                    out = out[:, :, None, None]
                if out.ndim != 4:
                    raise ValueError(f"layer {layer!r} outputs shape {tuple(out.shape)}: expected (N, C, h, w) or (N, D)")
                flat = out.flatten(2)
                best, pos = flat.max(dim=2)
                if peak is None:
                    size = (out.shape[2], out.shape[3])
                    peak = np.zeros((n, out.shape[1]), np.float32)
                    where = np.zeros((n, out.shape[1]), np.int32)
                peak[s:s + len(x)] = best.cpu().numpy()
                where[s:s + len(x)] = pos.cpu().numpy()
        finally:
            handle.remove()
    if peak is None:
        raise ValueError("no images to look at")
    return UnitExamples(layer, peak, where, size)


def _cache_path(ckpt: Checkpoint, dataset: ImageDataset, split: str, layer: str, cache_dir: str | os.PathLike | None
                ) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha1("\0".join([ckpt.sha256, dataset.fingerprint, split, layer, str(len(dataset)),
                                  "\0".join(dataset.ids)]).encode()).hexdigest()[:20]
    return root / "units" / f"{ckpt.sha256[:16]}-{dataset.fingerprint}-{key}.npz"


def cached_unit_examples(ckpt: Checkpoint, dataset: ImageDataset, split: str, layer: str,
                         cache_dir: str | os.PathLike | None = None, progress: Progress = False,
                         runtime: Runtime | None = None, distributed: bool = False) -> UnitExamples:
    """:func:`unit_examples` of ``dataset`` under ``ckpt``, from the disk cache (keyed by the
    checkpoint's hash, the dataset's fingerprint and ids, the split and the layer) when there,
    else computed once and written atomically. ``distributed``: every rank of the process
    group calls it; the pass is shared unless every rank finds the cache, and rank 0 writes it."""
    rt = runtime or ckpt.runtime
    path = _cache_path(ckpt, dataset, split, layer, cache_dir)
    meta = {"format": _FORMAT, "checkpoint": ckpt.sha256, "fingerprint": dataset.fingerprint, "split": split,
            "layer": layer, "n": len(dataset), "runtime": replace(rt, device=torch.device(rt.device.type)).describe()}
    stored = load_arrays(path, meta)
    if distributed and not dist_.all_agree(stored is not None):
        stored = None
    if stored is not None:
        return UnitExamples(layer, stored["peak"], stored["where"], tuple(int(v) for v in stored["map_size"]))
    ex = unit_examples(ckpt.model, dataset.images, layer, ckpt.meta.normalization, rt, progress=progress,
                       distributed=distributed)
    if not distributed or dist_.is_main():
        save_arrays(path, meta, peak=ex.peak, where=ex.where, map_size=np.asarray(ex.map_size))
    if distributed:
        dist_.barrier()
    return ex


@dataclass(frozen=True)
class UnitCrop:
    """The input pixels one unit sees: ``box`` ``(top, left, bottom, right)`` clipped to the
    image (bottom/right exclusive), ``full`` the same unclipped (it may reach past the border),
    ``clipped`` True when they differ."""

    box: tuple[int, int, int, int]
    full: tuple[int, int, int, int]

    @property
    def clipped(self) -> bool:
        return self.box != self.full


def unit_crop(rf: LayerRF, y: int, x: int, input_size: int | tuple[int, int]) -> UnitCrop:
    """The receptive field of unit ``(y, x)`` of ``rf``'s layer, clipped and unclipped."""
    return UnitCrop(unit_box(rf, y, x, input_size), _unclipped(rf, y, x))


def _unclipped(rf: LayerRF, y: int, x: int) -> tuple[int, int, int, int]:
    """``unit_box`` before clipping to the image."""
    cy, cx = rf.center(y, x)
    half_y, half_x = (rf.size[0] - 1) / 2, (rf.size[1] - 1) / 2
    return (math.ceil(cy - half_y - 1e-9), math.ceil(cx - half_x - 1e-9),
            math.floor(cy + half_y + 1e-9) + 1, math.floor(cx + half_x + 1e-9) + 1)


def unit_patch(image: np.ndarray, crop: UnitCrop, fill: tuple[int, int, int] = (128, 128, 128)) -> np.ndarray:
    """The patch of ``(H, W, 3) uint8`` ``image`` a unit sees, at the receptive field's full
    size: where the field reaches past the border the patch is ``fill`` (so a clipped crop shows
    as such)."""
    t, l, b, r = crop.full
    out = np.empty((b - t, r - l, 3), np.uint8)
    out[:] = fill
    ct, cl, cb, cr = crop.box
    if cb > ct and cr > cl:
        out[ct - t:cb - t, cl - l:cr - l] = image[ct:cb, cl:cr]
    return out


@contextlib.contextmanager
def knocked_out(view: nn.Module, layer: str, channels: Sequence[int]) -> Iterator[None]:
    """Inside the block, ``view``'s ``layer`` outputs zeros in ``channels`` (a forward hook that
    returns a modified copy; removed on exit, also on an exception). Use it on a private
    :func:`~cnnviz.hooks.model_view`, never on a shared model."""
    module = view.get_submodule(layer)
    idx = list(channels)

    def hook(m: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        out = output.clone()
        out[:, idx] = 0
        return out

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@dataclass(frozen=True)
class KnockoutResult:
    """The model with ``channels`` of ``layer`` zeroed against the intact model on the same
    images: recall per class (NaN for a class without images), confusion matrices (rows: true
    class) and accuracy, before and after."""

    layer: str
    channels: tuple[int, ...]
    recall_before: np.ndarray
    recall_after: np.ndarray
    confusion_before: np.ndarray
    confusion_after: np.ndarray
    accuracy_before: float
    accuracy_after: float
    logits_after: np.ndarray | None = None  # the knocked-out logits, when asked for (keep_after)

    @property
    def recall_change(self) -> np.ndarray:
        return self.recall_after - self.recall_before


def knocked_logits(model: nn.Module, images: np.ndarray, layer: str, channels: Sequence[int], norm: Normalization,
                   runtime: Runtime | None = None, batch_size: int = 500, progress: Progress = False,
                   distributed: bool = False) -> np.ndarray:
    """``(N, K) float32`` logits of ``images`` with ``channels`` of ``layer`` zeroed (no
    test-time augmentation), from a private view of ``model``. ``distributed``: shared by the
    ranks of the process group as :func:`~cnnviz.evaluate.predict_logits` does."""
    if distributed and dist_.active():
        lo, hi = dist_.shard_bounds(len(images), batch_size)
        part = knocked_logits(model, images[lo:hi], layer, channels, norm, runtime, batch_size,
                              progress if dist_.is_main() else False) if hi > lo else np.zeros((0, 0), np.float32)
        return dist_.gather_rows(part)
    rt = check_runtime(model, runtime)
    out = []
    with inference_batches(model, images, norm, rt, batch_size, progress, desc="knock-out") as (view, batches):
        for _, x in batches:
            with rt.autocast(), knocked_out(view, layer, channels):
                out.append(view(x).float().cpu())
    return torch.cat(out).numpy()


def _recall(conf: np.ndarray) -> np.ndarray:
    support = conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)


def compare_knockout(layer: str, channels: Sequence[int], labels: np.ndarray, before: np.ndarray,
                     after: np.ndarray) -> KnockoutResult:
    """A :class:`KnockoutResult` from the intact and the knocked-out logits of the same images."""
    labels = np.asarray(labels, np.int64)
    k = before.shape[1]
    cb, ca = (confusion_matrix(labels, lg.argmax(1), k) for lg in (before, after))
    return KnockoutResult(layer, tuple(int(c) for c in channels), _recall(cb), _recall(ca), cb, ca,
                          float(np.trace(cb) / len(labels)), float(np.trace(ca) / len(labels)))


def check_channels(model: nn.Module, layer: str, channels: Sequence[int]) -> int:
    """The number of channels of ``layer``; ``ValueError`` naming any of ``channels`` outside it."""
    width = _channels_of(resolve_layers(model, layer)[layer])
    bad = [int(c) for c in channels if not 0 <= int(c) < width] if width else []
    if bad:
        raise ValueError(f"{layer} has channels 0-{width - 1}; no channel {', '.join(map(str, bad))}")
    return width


def knockout(model: nn.Module, images: np.ndarray, labels: np.ndarray, layer: str, channels: Sequence[int],
             norm: Normalization, runtime: Runtime | None = None, batch_size: int = 500,
             progress: Progress = False, baseline: np.ndarray | None = None,
             keep_after: bool = False) -> KnockoutResult:
    """Score ``model`` on labelled ``images`` intact and with ``channels`` of ``layer`` zeroed.
    ``baseline``: the intact logits when already known (e.g. cached features' logits), saving
    their pass; ``keep_after``: keep the knocked-out logits in the result (to cache them). The
    shared model is never changed: the zeroing is a hook on a private view."""
    check_channels(model, layer, channels)
    labels = np.asarray(labels, np.int64)
    if not len(images) or (labels < 0).any():
        raise ValueError("a knock-out needs labelled images")
    k = int(getattr(model, "num_classes", 0))
    if k and labels.max() >= k:
        raise ValueError(f"the labels go up to {labels.max()}, but the model has classes 0-{k - 1}")
    if baseline is not None and baseline.shape[0] != len(images):
        raise ValueError(f"baseline has {baseline.shape[0]} rows for {len(images)} images")
    before = predict_logits(model, images, norm, runtime, batch_size) if baseline is None else baseline
    after = knocked_logits(model, images, layer, channels, norm, runtime, batch_size, progress)
    res = compare_knockout(layer, channels, labels, before, after)
    return replace(res, logits_after=after) if keep_after else res


def _channels_of(module: nn.Module) -> int:
    for attr in ("out_channels", "num_features", "out_features"):
        if hasattr(module, attr):
            return int(getattr(module, attr))
    return 0


def unit_importance(model: nn.Module, images: np.ndarray, labels: np.ndarray, layer: str, target: int,
                    norm: Normalization, channels: Sequence[int] | None = None, runtime: Runtime | None = None,
                    batch_size: int = 500, progress: Progress = False) -> np.ndarray:
    """How much class ``target`` needs each channel of ``layer``: for every channel (or those
    given), the drop in the mean probability of ``target`` on its own images when that channel
    alone is zeroed. ``(C,) float32`` over the layer's ``C`` channels (0 where not measured),
    larger = needed more (negative: the class does better without it)."""
    k = int(getattr(model, "num_classes", 0))
    if k and not 0 <= target < k:
        raise ValueError(f"the model has classes 0-{k - 1}; no class {target}")
    labels = np.asarray(labels, np.int64)
    mine = images[labels == target]
    if not len(mine):
        raise ValueError(f"no images of class {target} to measure with")
    rt = check_runtime(model, runtime)
    with inference_batches(model, mine, norm, rt, batch_size) as (view, batches):
        xs = [x for _, x in batches]
        store: dict = {}
        handle = _capture_output(view, layer, store)
        try:
            with contextlib.suppress(_Stop), rt.autocast():
                view(xs[0][:1])
        finally:
            handle.remove()
        out_shape = store["out"].shape
        width = out_shape[1] if len(out_shape) >= 2 else 0
        chosen = list(range(width)) if channels is None else [int(c) for c in channels]
        bad = [c for c in chosen if not 0 <= c < width]
        if bad:
            raise ValueError(f"{layer} has channels 0-{width - 1}; no channel {', '.join(map(str, bad))}")
        out = np.zeros(width, np.float32)
        update, close = progress_reporter(progress, len(chosen), f"zeroing each channel of {layer}")
        try:
            with rt.autocast():
                base = torch.cat([view(x).float().softmax(1)[:, target] for x in xs]).mean().item()
                for i, c in enumerate(chosen):
                    with knocked_out(view, layer, [c]):
                        p = torch.cat([view(x).float().softmax(1)[:, target] for x in xs]).mean().item()
                    out[c] = base - p
                    update(i + 1, len(chosen))
        finally:
            close()
    return out

"""Faithfulness of attribution maps: deletion and insertion curves (Petsiuk et al., RISE, 2018).

A map ranks the pixels of an image. *Deletion* replaces the top-ranked pixels (all three colour
channels) by a baseline, a growing fraction at a time, and follows the softmax probability of the
target class; a faithful map makes it fall fast (low area under the curve). *Insertion* starts
from the baseline and puts the top-ranked pixels back; a faithful map makes it rise fast (high
area). The baseline is the normalised zero image, i.e. the dataset's mean colour, the same
baseline :func:`~cnnviz.inspect.attribution.attribute` uses for integrated gradients and
occlusion; the replacement is done in the model's normalised input space.

Pixel order: descending map value, ties broken by the flattened index ``y * W + x`` (a stable
sort), so equal maps always give equal curves. Step ``k`` (``k = 0..steps``) has
``round(k * H * W / steps)`` pixels changed; areas use the trapezoidal rule over the fraction of
pixels changed, from 0 to 1.

:func:`baseline_maps` gives the maps a method must beat (random noise, Sobel edges), and
:func:`faithfulness_report` scores several methods and those baselines on the same images.
Forward passes run under ``torch.no_grad()`` on a :func:`~cnnviz.hooks.model_view`, so the
shared model is never changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..hooks import model_view
from ..inputs import Normalization, to_input
from ..runtime import device_of
from .attribution import METHODS, attribution_maps

__all__ = ["BASELINES", "Curves", "FaithfulnessReport", "MethodScore", "baseline_maps", "deletion_insertion",
           "faithfulness_report"]

BASELINES: tuple[str, ...] = ("random", "sobel")
_GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as PIL's convert("L")


@dataclass(frozen=True, eq=False)
class Curves:
    """Deletion and insertion curves of ``N`` images: ``fractions (steps+1,)`` of pixels changed
    (0 to 1), target-class probabilities ``deletion`` / ``insertion (N, steps+1)`` and their
    trapezoidal areas ``deletion_auc`` / ``insertion_auc (N,)`` (lower deletion and higher
    insertion area = more faithful)."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray


@dataclass(frozen=True, eq=False)
class MethodScore:
    """One method's (or baseline map's) scores over the report's images: mean and standard
    deviation (ddof=0) of the areas, mean curves ``(steps+1,)``, and the seconds spent computing
    the maps and the curves."""

    name: str
    kind: str  # "method" or "baseline"
    deletion_auc_mean: float
    deletion_auc_std: float
    insertion_auc_mean: float
    insertion_auc_std: float
    mean_deletion: np.ndarray
    mean_insertion: np.ndarray
    map_seconds: float
    curve_seconds: float

    def row(self) -> dict:
        return {"method": self.name, "kind": self.kind,
                "deletion_auc": self.deletion_auc_mean, "deletion_auc_std": self.deletion_auc_std,
                "insertion_auc": self.insertion_auc_mean, "insertion_auc_std": self.insertion_auc_std,
                "map_seconds": self.map_seconds, "curve_seconds": self.curve_seconds}


@dataclass(frozen=True, eq=False)
class FaithfulnessReport:
    """Scores of attribution methods, then baseline maps, on the same ``n`` images."""

    n: int
    steps: int
    fractions: np.ndarray
    scores: tuple[MethodScore, ...]

    def rows(self) -> list[dict]:
        """One plain dict per method (see :meth:`MethodScore.row`), for a table."""
        return [s.row() for s in self.scores]

    def to_dict(self) -> dict:
        """JSON-able form: ``n``, ``steps``, ``fractions`` and per method its row plus its mean
        curves as lists."""
        return {"n": self.n, "steps": self.steps, "fractions": self.fractions.tolist(),
                "methods": [{**s.row(), "mean_deletion": s.mean_deletion.tolist(),
                             "mean_insertion": s.mean_insertion.tolist()} for s in self.scores]}


def deletion_insertion(
    model: torch.nn.Module,
    images: np.ndarray,
    norm: Normalization,
    targets: Sequence[int] | np.ndarray,
    maps: np.ndarray,
    steps: int = 16,
    batch_size: int = 64,
) -> Curves:
    """Deletion and insertion curves of ``maps`` (higher = more important) for ``model``.

    ``images``: ``(N, H, W, 3) uint8``; ``targets``: ``(N,)`` class indices; ``maps``:
    ``(N, H, W)`` finite floats. ``steps + 1`` points per curve (see the module docstring for the
    pixel order and the baseline); at most ``batch_size`` perturbed inputs go through the model
    at once. Runs on the device of the model's parameters.
    """
    images, targets = _checked_images(model, images, targets)
    n, h, w = images.shape[:3]
    maps = np.asarray(maps)
    if maps.shape != (n, h, w):
        raise ValueError(f"maps must have shape (N, H, W) = {(n, h, w)} to match the images, got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps must be finite (no NaN or inf)")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    counts = np.array([round(k * h * w / steps) for k in range(steps + 1)])
    fractions = counts / (h * w)
    if n == 0:
        empty = np.zeros((0, steps + 1), np.float32)
        return Curves(fractions, empty, empty, np.zeros(0), np.zeros(0))

    device = device_of(model)
    # float64 first: negating an unsigned map would wrap around
    order = np.argsort(-maps.reshape(n, -1).astype(np.float64), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(h * w)[None], axis=1)  # rank[i, pixel] = position in order
    rank_t = torch.from_numpy(rank).to(device)
    counts_t = torch.from_numpy(counts).to(device)
    targets_t = torch.as_tensor(targets, device=device)
    x = to_input(images, norm, device)
    # Job j = (image, curve, step): curve 0 deletes the top pixels, curve 1 inserts them.
    per_image = 2 * (steps + 1)
    probs = torch.empty(n * per_image, dtype=torch.float32, device=device)
    view = model_view(model)
    with torch.no_grad():
        for start in range(0, n * per_image, batch_size):
            j = torch.arange(start, min(start + batch_size, n * per_image), device=device)
            img, curve, k = j // per_image, (j % per_image) // (steps + 1), j % (steps + 1)
            keep = (rank_t[img] >= counts_t[k, None]) ^ (curve[:, None] == 1)
            xs = torch.where(keep.view(-1, 1, h, w), x[img], torch.zeros((), device=device))
            p = torch.softmax(view(xs).float(), dim=1)
            probs[j] = p.gather(1, targets_t[img, None])[:, 0]
    both = probs.view(n, 2, steps + 1).cpu().numpy()
    deletion, insertion = both[:, 0], both[:, 1]
    return Curves(fractions, deletion, insertion, _area(deletion, fractions), _area(insertion, fractions))


def _area(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Trapezoidal area of each row of ``curves`` over ``fractions`` (float64)."""
    c = curves.astype(np.float64)
    return ((c[:, 1:] + c[:, :-1]) / 2 * np.diff(fractions)).sum(1)


def baseline_maps(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Maps an attribution method must beat, ``(N, H, W) float32`` in ``[0, 1]``.

    ``"random"``: uniform noise from ``np.random.default_rng(seed)`` (the same for the same seed
    and shape). ``"sobel"``: gradient magnitude of the grey image (ITU-R 601 luma) with 3x3 Sobel
    filters (``scipy.ndimage.sobel``, reflected border), divided by each image's maximum."""
    images = _checked_array(images)
    n, h, w = images.shape[:3]
    if kind == "random":
        return np.random.default_rng(seed).random((n, h, w), dtype=np.float32)
    if kind == "sobel":
        out = np.zeros((n, h, w), np.float32)
        for i, grey in enumerate(images.astype(np.float32) @ _GREY):
            out[i] = np.hypot(ndimage.sobel(grey, 0, mode="reflect"), ndimage.sobel(grey, 1, mode="reflect"))
        peak = out.reshape(n, -1).max(1, initial=0.0)[:, None, None]
        return np.divide(out, peak, out=np.zeros_like(out), where=peak > 0)
    raise ValueError(f"unknown baseline map kind {kind!r}; choose from {', '.join(BASELINES)}")


def faithfulness_report(
    model: torch.nn.Module,
    images: np.ndarray,
    norm: Normalization,
    targets: Sequence[int] | np.ndarray,
    methods: Sequence[str] = METHODS,
    baselines: Sequence[str] = BASELINES,
    steps: int = 16,
    layer: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 64,
    chunk: int = 16,
    **attribution_kwargs,
) -> FaithfulnessReport:
    """Deletion and insertion areas of each method's maps (from
    :func:`~cnnviz.inspect.attribution.attribution_maps`, ``chunk`` images at a time), then of
    each baseline map kind, on the same images and targets.

    ``layer`` and ``attribution_kwargs`` (``ig_steps``, ``internal_batch_size``, ...) go to
    ``attribution_maps``; ``steps`` and ``batch_size`` to :func:`deletion_insertion`.
    ``progress(done, total)`` is called after each chunk, counting images over all methods."""
    images, targets = _checked_images(model, images, targets)
    methods, baselines = tuple(dict.fromkeys(methods)), tuple(dict.fromkeys(baselines))
    unknown = [m for m in methods if m not in METHODS] + [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown method(s) or baseline(s) {unknown}; methods: {', '.join(METHODS)}; "
                         f"baselines: {', '.join(BASELINES)}")
    n = len(images)
    if n == 0 or chunk < 1:
        raise ValueError(f"faithfulness_report needs at least one image and chunk >= 1, got {n} images, "
                         f"chunk {chunk}")
    if not methods and not baselines:
        raise ValueError("faithfulness_report needs at least one method or baseline")
    jobs = [(m, "method") for m in methods] + [(b, "baseline") for b in baselines]
    total, done = len(jobs) * n, 0
    scores, fractions = [], None
    for name, kind in jobs:
        t0 = time.perf_counter()
        # baselines in one draw for all images, so the random maps do not depend on ``chunk``
        every = baseline_maps(images, name) if kind == "baseline" else None
        parts, map_s, curve_s = [], time.perf_counter() - t0, 0.0
        for start in range(0, n, chunk):
            imgs, tgts = images[start:start + chunk], targets[start:start + chunk]
            t0 = time.perf_counter()
            maps = (every[start:start + chunk] if every is not None else
                    attribution_maps(model, imgs, norm, tgts, name, layer=layer, **attribution_kwargs))
            t1 = time.perf_counter()
            parts.append(deletion_insertion(model, imgs, norm, tgts, maps, steps, batch_size))
            map_s, curve_s = map_s + t1 - t0, curve_s + time.perf_counter() - t1
            done += len(imgs)
            if progress is not None:
                progress(done, total)
        fractions = parts[0].fractions
        d = np.concatenate([c.deletion_auc for c in parts])
        i = np.concatenate([c.insertion_auc for c in parts])
        scores.append(MethodScore(
            name, kind, float(d.mean()), float(d.std()), float(i.mean()), float(i.std()),
            np.concatenate([c.deletion for c in parts]).mean(0), np.concatenate([c.insertion for c in parts]).mean(0),
            map_s, curve_s))
    return FaithfulnessReport(n, steps, fractions, tuple(scores))


def _checked_array(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"images must be (N, H, W, 3) uint8, got shape {images.shape} dtype {images.dtype}")
    return images


def _checked_images(model: torch.nn.Module, images: np.ndarray, targets) -> tuple[np.ndarray, np.ndarray]:
    """``(images, targets as int64)``, checked against each other and the model's classes."""
    images = _checked_array(images)
    targets = np.asarray(targets).reshape(-1)
    if targets.size and not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integer class indices, got dtype {targets.dtype}")
    if len(targets) != len(images):
        raise ValueError(f"{len(targets)} targets for {len(images)} images")
    classes = getattr(model, "num_classes", None)
    if classes is not None and len(targets) and not ((targets >= 0) & (targets < classes)).all():
        raise ValueError(f"targets must be in 0..{classes - 1} (the model has {classes} classes), "
                         f"got {targets.min()}..{targets.max()}")
    return images, targets.astype(np.int64)

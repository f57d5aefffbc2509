"""Disk caches of the passes the pages make over a whole split: the label purity of every
held-out image's nearest training images and the 2-D map of the split's features (Neighbours),
and a unit's knock-out on the held-out images (Units). Keyed
by the checkpoint's hash, both datasets' fingerprints, the split and the settings, written
atomically (:mod:`cnnviz.array_cache`); the warm-up (:mod:`cnnviz.warm`) fills the ones a first
visit shows, so that visit only reads them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..array_cache import load_arrays, save_arrays
from ..checkpoints import Checkpoint
from ..data import ImageDataset, default_cache_dir
from .neighbours import Metric, NeighbourIndex, PurityResult, neighbour_purity, pixel_vectors
from .projection import Projection, project
from .units import KnockoutResult, compare_knockout, knockout

_FORMAT = 1
SPACES = ("features", "pixels")
PURITY_IMAGES = 2000  # held-out images purity is measured on at most (a seeded sample of more)


def _path(kind: str, meta: dict, ckpt: Checkpoint, cache_dir: str | os.PathLike | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    return root / kind / f"{ckpt.sha256[:16]}-{key}.npz"


def purity_rows(n: int, max_images: int | None, seed: int = 0) -> np.ndarray | None:
    """The held-out rows purity is measured on: None (all of them) up to ``max_images``, else a
    seeded sample of that many, in order."""
    if max_images is None or n <= max_images:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, max_images, replace=False))


def cached_purity(ckpt: Checkpoint, train: ImageDataset, held: ImageDataset, split: str, space: str, k: int,
                  metric: Metric, index: NeighbourIndex, held_features: np.ndarray | None = None,
                  cache_dir: str | os.PathLike | None = None, max_images: int | None = PURITY_IMAGES
                  ) -> PurityResult:
    """:func:`~cnnviz.inspect.neighbours.neighbour_purity` of ``held``'s images among ``train``'s,
    in ``space``: ``"features"`` (``index`` over the training features, ``held_features`` the
    held-out ones) or ``"pixels"`` (``index`` over the training images' pixels); on a seeded
    sample of ``max_images`` of them when there are more (``rows`` says which: a per-class mean
    of 200 images is within a few points, and the search costs in proportion); from the disk
    cache when there."""
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}: use features or pixels")
    meta = {"format": _FORMAT, "checkpoint": ckpt.sha256, "train": train.fingerprint, "held": held.fingerprint,
            "split": split, "space": space, "k": int(k), "metric": metric, "n": [len(train), len(held)],
            "max_images": max_images}
    path = _path("purity", meta, ckpt, cache_dir)
    rows = purity_rows(len(held), max_images)
    stored = load_arrays(path, meta)
    if stored is not None:
        return PurityResult(stored["per_image"], stored["per_class"], stored["support"], float(stored["overall"]),
                            int(k), metric, rows)
    if space == "features" and held_features is None:
        raise ValueError("the features space needs the held-out images' features")
    take = slice(None) if rows is None else rows
    queries = np.asarray(held_features)[take] if space == "features" else pixel_vectors(held.images[take])
    res = neighbour_purity(index, train.labels, queries, np.asarray(held.labels)[take], k, metric,
                           len(ckpt.meta.classes))
    save_arrays(path, meta, per_image=res.per_image, per_class=res.per_class, support=res.support,
                overall=np.asarray(res.overall))
    return PurityResult(res.per_image, res.per_class, res.support, res.overall, res.k, res.metric, rows)


def cached_projection(ckpt: Checkpoint, held: ImageDataset, split: str, method: str, features: np.ndarray,
                      cache_dir: str | os.PathLike | None = None) -> Projection:
    """:func:`~cnnviz.inspect.projection.project` of ``held``'s ``features`` with ``method``
    (every point, seeded), from the disk cache when there."""
    meta = {"format": _FORMAT, "checkpoint": ckpt.sha256, "held": held.fingerprint, "split": split,
            "method": method, "n": len(held)}
    path = _path("projection", meta, ckpt, cache_dir)
    stored = load_arrays(path, meta)
    labels = np.asarray(held.labels, np.int64)
    if stored is not None:
        return Projection(stored["xy"], str(stored["method"]), labels, json.loads(str(stored["params"])))
    proj = project(features, method, labels=labels)
    save_arrays(path, meta, xy=proj.xy, method=np.asarray(proj.method), params=np.asarray(json.dumps(proj.params)))
    return proj


def cached_knockout(ckpt: Checkpoint, held: ImageDataset, split: str, layer: str, channels: Sequence[int],
                    baseline: np.ndarray, cache_dir: str | os.PathLike | None = None) -> KnockoutResult:
    """:func:`~cnnviz.inspect.units.knockout` of ``layer``'s ``channels`` on ``held``'s images
    (``baseline``: their intact logits, from the feature cache), from the disk cache when there."""
    channels = [int(c) for c in channels]
    meta = {"format": _FORMAT, "checkpoint": ckpt.sha256, "held": held.fingerprint, "split": split,
            "layer": layer, "channels": channels, "n": len(held)}
    path = _path("knockout", meta, ckpt, cache_dir)
    stored = load_arrays(path, meta)
    if stored is not None:
        return compare_knockout(layer, channels, held.labels, baseline, stored["after"])
    res = knockout(ckpt.model, held.images, held.labels, layer, channels, ckpt.meta.normalization,
                   baseline=baseline, keep_after=True)
    save_arrays(path, meta, after=res.logits_after)
    return res

"""Disk caches of the passes the Neighbours page makes over a whole split: the label purity of
every held-out image's nearest training images, and the 2-D map of the split's features. Keyed
by the checkpoint's hash, both datasets' fingerprints, the split and the settings, written
atomically (:mod:`cnnviz.array_cache`); the warm-up (:mod:`cnnviz.warm`) fills the ones a first
visit shows, so that visit only reads them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..array_cache import load_arrays, save_arrays
from ..checkpoints import Checkpoint
from ..data import ImageDataset, default_cache_dir
from .neighbours import Metric, NeighbourIndex, PurityResult, neighbour_purity, pixel_vectors
from .projection import Projection, project

_FORMAT = 1
SPACES = ("features", "pixels")


def _path(kind: str, meta: dict, ckpt: Checkpoint, cache_dir: str | os.PathLike | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    return root / kind / f"{ckpt.sha256[:16]}-{key}.npz"


def cached_purity(ckpt: Checkpoint, train: ImageDataset, held: ImageDataset, split: str, space: str, k: int,
                  metric: Metric, index: NeighbourIndex, held_features: np.ndarray | None = None,
                  cache_dir: str | os.PathLike | None = None) -> PurityResult:
    """:func:`~cnnviz.inspect.neighbours.neighbour_purity` of ``held``'s images among ``train``'s,
    in ``space``: ``"features"`` (``index`` over the training features, ``held_features`` the
    held-out ones) or ``"pixels"`` (``index`` over the training images' pixels); from the disk
    cache when there."""
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}: use features or pixels")
    meta = {"format": _FORMAT, "checkpoint": ckpt.sha256, "train": train.fingerprint, "held": held.fingerprint,
            "split": split, "space": space, "k": int(k), "metric": metric, "n": [len(train), len(held)]}
    path = _path("purity", meta, ckpt, cache_dir)
    stored = load_arrays(path, meta)
    if stored is not None:
        return PurityResult(stored["per_image"], stored["per_class"], stored["support"], float(stored["overall"]),
                            int(k), metric)
    if space == "features" and held_features is None:
        raise ValueError("the features space needs the held-out images' features")
    queries = held_features if space == "features" else pixel_vectors(held.images)
    res = neighbour_purity(index, train.labels, queries, held.labels, k, metric, len(ckpt.meta.classes))
    save_arrays(path, meta, per_image=res.per_image, per_class=res.per_class, support=res.support,
                overall=np.asarray(res.overall))
    return res


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
